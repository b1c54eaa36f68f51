//! Every error answer of an imgfeat API: `{"error": "<what went wrong and what to do>"}`,
//! with a stable `reason` code where the API has one (`{"error", "reason"}`) and
//! `Retry-After` on the answers a client should retry.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// A stable code for clients to branch on (`too_busy`, `undecodable`, ...).
    pub reason: Option<&'static str>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason: None,
            retry_after_s: None,
        }
    }

    /// An error with its stable `reason` code.
    pub fn with_reason(
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(status, message)
        }
    }

    /// Asks the client to retry after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.reason {
            Some(reason) => serde_json::json!({ "error": self.message, "reason": reason }),
            None => serde_json::json!({ "error": self.message }),
        };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}
