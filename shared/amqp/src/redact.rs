//! Keeping the broker password out of every error and log line. The AMQP URL carries
//! it, and both lapin's URI parser ("Invalid URL: '<the url>'") and our own messages
//! would print it.

/// `url` with the password of its user info replaced by `***`; unchanged without one.
pub fn redact_url(url: &str) -> String {
    match split_password(url) {
        Some((before, _, after)) => format!("{before}***{after}"),
        None => url.to_owned(),
    }
}

/// `text` with `url` redacted and every other trace of its password (as written, and
/// percent-decoded) replaced by `***`. Meant for messages from libraries that were
/// handed the URL, whose wording we do not control.
pub fn scrub(text: &str, url: &str) -> String {
    let Some((_, password, _)) = split_password(url) else {
        return text.to_owned();
    };
    let mut out = text.replace(url, &redact_url(url));
    for secret in [password.to_owned(), percent_decode(password)] {
        if !secret.is_empty() {
            out = out.replace(&secret, "***");
        }
    }
    out
}

/// Splits `scheme://user:password@rest` around the password. The user info ends at
/// the LAST `@`, so that an unencoded `@` inside the password is still hidden. A URL
/// missing its `//` (`amqp:user:pw@host`, which lapin rejects by quoting it whole) is
/// split after the scheme.
fn split_password(url: &str) -> Option<(&str, &str, &str)> {
    let authority_start = match url.find("://") {
        Some(i) => i + 3,
        None => url.find(':')? + 1,
    };
    let rest = &url[authority_start..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    let (pw_start, pw_end) = (authority_start + colon + 1, authority_start + at);
    Some((&url[..pw_start], &url[pw_start..pw_end], &url[pw_end..]))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_replaced_and_the_rest_kept() {
        assert_eq!(
            redact_url("amqp://fleet:s3cret@rabbit:5672/%2f?heartbeat=10"),
            "amqp://fleet:***@rabbit:5672/%2f?heartbeat=10"
        );
        assert_eq!(
            redact_url("amqps://u:p@ss:w@rd@host/vh"),
            "amqps://u:***@host/vh"
        );
        assert_eq!(redact_url("amqp://u:@host"), "amqp://u:***@host");
        assert_eq!(redact_url("amqp:u:pw@host/%2f"), "amqp:u:***@host/%2f");
        // Nothing to hide.
        assert_eq!(redact_url("amqp://host:5672/%2f"), "amqp://host:5672/%2f");
        assert_eq!(redact_url("amqp://user@host"), "amqp://user@host");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn library_messages_lose_the_password_in_every_spelling() {
        let url = "amqp://fleet:p%40ss%2Fw0rd@rabbit/%2f";
        let lapin_like = format!("Invalid URL: '{url}'; auth as fleet with p@ss/w0rd failed");
        let clean = scrub(&lapin_like, url);
        assert!(!clean.contains("p%40ss%2Fw0rd"), "{clean}");
        assert!(!clean.contains("p@ss/w0rd"), "{clean}");
        assert!(clean.contains("amqp://fleet:***@rabbit/%2f"), "{clean}");
        assert_eq!(scrub("no secret here", "amqp://h/%2f"), "no secret here");
    }
}
