//! The `[http]` section every service with an API shares, and the `[telemetry]` section
//! of every service.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address of the HTTP API (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// `token` (the default): every `/v1` request needs `Authorization: Bearer <token>`.
    /// `none`: no check at all, for a laptop; never in a shared network.
    pub auth: AuthMode,
    /// The bearer token (`IMGFEAT_HTTP__TOKEN`, from a Secret in production).
    pub token: Option<Token>,
    /// Largest request body; bigger ones get 413 before they are read.
    pub max_body_bytes: usize,
    /// A request still running after this long gets 503 (the client may retry: every
    /// publish is idempotent downstream).
    pub request_timeout_ms: u64,
    /// Requests served at once; one more gets 429 at once rather than queueing.
    pub max_concurrent_requests: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            auth: AuthMode::Token,
            token: None,
            // A phone photo (2-6 MB) with room to spare; 10 000 IDs of 20 digits fit
            // many times over.
            max_body_bytes: 32 << 20,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Token,
    None,
}

/// `[telemetry]`: where `/metrics`, `/healthz` and `/readyz` are served, apart from the
/// API so that Prometheus and the probes need no token and the API port can be closed
/// to them. Each service has its own default port (compose's), so that several run on
/// one host side by side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Address of the endpoints; unset: not served (workers only).
    pub listen: Option<String>,
}

impl TelemetrySettings {
    pub fn at(address: &str) -> Self {
        Self {
            listen: Some(address.into()),
        }
    }
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Written as `<redacted>`: settings are serialised to list their defaults and keys,
/// never to carry a secret anywhere.
impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Shorter tokens are within reach of guessing over the network.
pub const MIN_TOKEN_LEN: usize = 16;

impl HttpSettings {
    /// The API refuses to start open by accident: no token is an error unless
    /// `auth = "none"` says so.
    /// Checked with the service's `[telemetry]`, whose port must differ from the API's.
    pub fn validate(&self, telemetry: &TelemetrySettings) -> Result<(), String> {
        let http = self;
        let invalid = |m: String| Err(m);
        let Some(metrics) = telemetry.listen.as_deref() else {
            return invalid(
                "telemetry.listen is not set: a service serves its metrics and probes".into(),
            );
        };
        for (key, value) in [
            ("http.listen", &*http.listen),
            ("telemetry.listen", metrics),
        ] {
            if value.parse::<std::net::SocketAddr>().is_err() {
                return invalid(format!(
                    "{key} {value:?} is not an address like 0.0.0.0:8080"
                ));
            }
        }
        let fixed_port = |a: &str| a.rsplit(':').next().is_some_and(|p| p != "0");
        if http.listen == metrics && fixed_port(&http.listen) {
            return invalid(format!(
                "http.listen and telemetry.listen are both {}: metrics need their own port",
                http.listen
            ));
        }
        let token_len = http.token.as_ref().map_or(0, |t| t.expose().len());
        match http.auth {
            AuthMode::Token if token_len == 0 => {
                return invalid(
                    "http.token is not set: give the API a token (IMGFEAT_HTTP__TOKEN, from a Secret), \
                     or set http.auth = \"none\" for local use"
                        .into(),
                );
            }
            AuthMode::Token if token_len < MIN_TOKEN_LEN => {
                return invalid(format!(
                    "http.token has {token_len} characters; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)"
                ));
            }
            AuthMode::None if token_len > 0 => {
                return invalid(
                    "http.auth = \"none\" but http.token is set: remove one, so that it is clear whether the API is open"
                        .into(),
                );
            }
            _ => {}
        }
        if http.max_body_bytes == 0
            || http.request_timeout_ms == 0
            || http.max_concurrent_requests == 0
        {
            return invalid(
                "http.max_body_bytes, http.request_timeout_ms and http.max_concurrent_requests must be >= 1"
                    .into(),
            );
        }
        Ok(())
    }
}
