//! What stands in front of the API routes, outermost first:
//!
//! 0. an error answer to a request that sent a body closes the connection;
//! 1. every error answer as JSON (`{"error": ...}`), whichever layer produced it;
//! 2. the bearer token ([`crate::auth`]), before anything costs a permit;
//! 3. the concurrency limit, shedding load: a request beyond
//!    `http.max_concurrent_requests` gets 429 at once rather than waiting in a queue
//!    nobody bounds;
//! 4. the request timeout (503);
//! 5. the body limit (413), checked on `Content-Length` before reading and while
//!    reading a chunked body.
//!
//! tower's and tower-http's layers do the work; this module only orders them and turns
//! their errors into answers.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router, middleware};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::ApiError;
use crate::auth::{BearerAuth, require_token};
use crate::settings::HttpSettings;

/// `protected` behind the token and the limits of `http`, beside `open` (the probes),
/// every error answer of both in JSON.
pub fn assemble(protected: Router, open: Router, http: &HttpSettings) -> Router {
    protect(protected, http)
        .merge(open)
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn(close_after_refused_body))
}

/// Adds `Connection: close` to an error answer of a request that sent a body.
///
/// Refusals (401, 413, 429, 501, 503 ...) answer before the body is read. hyper then
/// closes the connection rather than read a body nobody wants, but without saying so,
/// and a keep-alive client that pooled it sends its next request into a closing socket
/// and gets a broken answer (seen in our own tests as reqwest's `IncompleteMessage`).
/// Saying so up front keeps the client from reusing it. Errors are rare, so closing
/// after one also where the body had been read costs nothing worth telling apart.
async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let sent_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let mut res = next.run(req).await;
    let status = res.status();
    if sent_body && (status.is_client_error() || status.is_server_error()) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

fn protect(routes: Router, http: &HttpSettings) -> Router {
    let timeout = Duration::from_millis(http.request_timeout_ms);
    let limited = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e: BoxError| async move {
            overload_or_timeout(e, timeout)
        }))
        .load_shed()
        // Global: axum applies a layer to each route separately, and a per-route
        // semaphore would multiply the limit by the number of routes.
        .layer(GlobalConcurrencyLimitLayer::new(
            http.max_concurrent_requests,
        ))
        .timeout(timeout);
    routes
        // The body limit below replaces axum's own 2 MB default, which would otherwise
        // cap `max_body_bytes` silently.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(http.max_body_bytes))
        .layer(limited)
        .layer(middleware::from_fn_with_state(
            BearerAuth::from_settings(http),
            require_token,
        ))
}

fn overload_or_timeout(e: BoxError, timeout: Duration) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests at once (http.max_concurrent_requests); retry shortly",
        )
        .into_response()
    } else if e.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} ms (http.request_timeout_ms); retry later",
                timeout.as_millis()
            ),
        )
        .into_response()
    } else {
        tracing::error!(error = %e, "unexpected error in the API's layers");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
    }
}

/// Error answers that are not JSON yet (a body limit's 413, an unknown route's 404, a
/// wrong method's 405) get the API's `{"error": ...}` shape, with their text if any.
async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // These bodies are short texts made by axum or tower-http; a bound keeps it so.
    let text = to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let body = serde_json::json!({ "error": text }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
