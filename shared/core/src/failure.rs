use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether retrying can help. Permanent failures are recorded and dead-lettered at once;
/// transient ones are retried with back-off and never lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Permanent,
    Transient,
}

/// The pipeline stage a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Fetch,
    Decode,
    Detect,
    Extract,
    Persist,
    Message,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Fetch,
        Stage::Decode,
        Stage::Detect,
        Stage::Extract,
        Stage::Persist,
        Stage::Message,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Detect => "detect",
            Stage::Extract => "extract",
            Stage::Persist => "persist",
            Stage::Message => "message",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an image could not be processed, as a small closed set that metrics and summaries
/// can count by. The free-text detail lives in [`FailureReason::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The image does not exist in its source.
    NotFound,
    /// The file is empty.
    Empty,
    /// More bytes than the configured limit.
    TooLarge,
    /// More pixels than the configured limit (decompression bomb guard).
    TooManyPixels,
    /// Not an image format we decode.
    UnsupportedFormat,
    /// A known format whose bytes are corrupt or truncated.
    Corrupt,
    /// A queue message that is not a valid job.
    MalformedMessage,
    /// The source, store, broker or model failed in a way retrying may fix.
    Unavailable,
    /// An inference or internal error.
    Internal,
}

impl FailureKind {
    pub const ALL: [FailureKind; 9] = [
        FailureKind::NotFound,
        FailureKind::Empty,
        FailureKind::TooLarge,
        FailureKind::TooManyPixels,
        FailureKind::UnsupportedFormat,
        FailureKind::Corrupt,
        FailureKind::MalformedMessage,
        FailureKind::Unavailable,
        FailureKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not_found",
            FailureKind::Empty => "empty",
            FailureKind::TooLarge => "too_large",
            FailureKind::TooManyPixels => "too_many_pixels",
            FailureKind::UnsupportedFormat => "unsupported_format",
            FailureKind::Corrupt => "corrupt",
            FailureKind::MalformedMessage => "malformed_message",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<FailureKind> {
        FailureKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn class(self) -> ErrorClass {
        match self {
            FailureKind::Unavailable => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure's kind plus a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    pub kind: FailureKind,
    pub message: String,
}

impl FailureReason {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        self.kind.class()
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in FailureKind::ALL {
            assert_eq!(FailureKind::parse(k.as_str()), Some(k));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        assert_eq!(FailureKind::parse("nope"), None);
    }

    #[test]
    fn only_unavailability_is_worth_retrying() {
        for k in FailureKind::ALL {
            let transient = k.class() == ErrorClass::Transient;
            assert_eq!(transient, k == FailureKind::Unavailable, "{k}");
        }
    }
}
