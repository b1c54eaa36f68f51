//! Bearer-token check of the API.
//!
//! 401 when credentials are missing or not a bearer token (the client has not
//! authenticated, RFC 9110 15.5.2; the answer carries `WWW-Authenticate: Bearer`), 403
//! when a well-formed token is the wrong one (authenticated as nobody allowed).
//!
//! The presented token and the expected one are compared as SHA-256 digests with
//! `subtle`'s constant-time equality: the time taken says nothing about how many
//! leading bytes matched, nor about the expected token's length.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;
use crate::settings::{AuthMode, HttpSettings};

#[derive(Clone)]
pub struct BearerAuth {
    /// `None`: `auth = "none"`, everything passes.
    expected: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    Wrong,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl BearerAuth {
    pub fn from_settings(http: &HttpSettings) -> Self {
        let expected = match http.auth {
            AuthMode::None => None,
            // An empty digest input can't happen after validation; if it did, every
            // request would be refused, which is the safe side.
            AuthMode::Token => Some(digest(
                http.token
                    .as_ref()
                    .map_or(&b""[..], |t| t.expose().as_bytes()),
            )),
        };
        Self { expected }
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let presented = bearer_token(value).ok_or(AuthError::Malformed)?;
        if digest(presented).ct_eq(expected).into() {
            Ok(())
        } else {
            Err(AuthError::Wrong)
        }
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 9110 11.1).
fn bearer_token(value: &HeaderValue) -> Option<&[u8]> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token.as_bytes())
}

/// Middleware in front of every `/v1` route.
pub async fn require_token(State(auth): State<BearerAuth>, req: Request, next: Next) -> Response {
    match auth.check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(reason = ?e, path = %req.uri().path(), "request refused");
            refusal(e)
        }
    }
}

fn refusal(e: AuthError) -> Response {
    let (status, message) = match e {
        AuthError::Missing => (
            StatusCode::UNAUTHORIZED,
            "no Authorization header: send `Authorization: Bearer <token>`",
        ),
        AuthError::Malformed => (
            StatusCode::UNAUTHORIZED,
            "the Authorization header is not `Bearer <token>`",
        ),
        AuthError::Wrong => (StatusCode::FORBIDDEN, "wrong token"),
    };
    let mut res = ApiError::new(status, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Token;

    fn auth(token: &str) -> BearerAuth {
        BearerAuth::from_settings(&HttpSettings {
            token: Some(Token::new(token)),
            ..HttpSettings::default()
        })
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn sorts_credentials_into_missing_malformed_wrong_and_right() {
        let a = auth("0123456789abcdef");
        let cases = [
            ("Bearer 0123456789abcdef", Ok(())),
            ("bearer 0123456789abcdef", Ok(())),
            ("Bearer 0123456789abcdeF", Err(AuthError::Wrong)),
            ("Bearer 0123456789abcdef0", Err(AuthError::Wrong)),
            ("Bearer 0123456789abcde", Err(AuthError::Wrong)),
            ("Basic 0123456789abcdef", Err(AuthError::Malformed)),
            ("Bearer ", Err(AuthError::Malformed)),
            ("0123456789abcdef", Err(AuthError::Malformed)),
        ];
        for (value, expected) in cases {
            assert_eq!(a.check(&headers(value)), expected, "{value:?}");
        }
        assert_eq!(a.check(&HeaderMap::new()), Err(AuthError::Missing));
    }

    #[test]
    fn auth_none_lets_everything_through() {
        let open = BearerAuth::from_settings(&HttpSettings {
            auth: AuthMode::None,
            ..HttpSettings::default()
        });
        assert_eq!(open.check(&HeaderMap::new()), Ok(()));
    }
}
