use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The platform's identifier of an image. Every result is keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(pub u64);

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ImageId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(ImageId)
    }
}

/// A model version names everything that determines a stored result, so results of
/// different versions live side by side and a new version can be back-filled beside the
/// old one. Detector results use the detector's version (`name@version`); codes use the
/// extractor version, which also names the detector because the crop it embeds came
/// from that detector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelVersion(String);

impl TryFrom<String> for ModelVersion {
    type Error = InvalidModelVersion;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ModelVersion> for String {
    fn from(v: ModelVersion) -> String {
        v.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid model version {0:?}: use 1..=200 characters of [A-Za-z0-9._@+-]")]
pub struct InvalidModelVersion(pub String);

impl ModelVersion {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidModelVersion> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 200
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidModelVersion(s))
        }
    }

    /// `name@version` of one model.
    pub fn of_model(name: &str, version: &str) -> Result<Self, InvalidModelVersion> {
        Self::new(format!("{name}@{version}"))
    }

    /// The version of a result made by `self` applied to the output of `upstream`.
    pub fn after(&self, upstream: &ModelVersion) -> Result<Self, InvalidModelVersion> {
        Self::new(format!("{}+{}", upstream.0, self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelVersion {
    type Err = InvalidModelVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_versions_accept_names_and_compose() {
        let det = ModelVersion::of_model("ssd_mobilenetv2_oidv4_24cls", "1").unwrap();
        let ext = ModelVersion::new("effnet-lite0@1+simhash64@1").unwrap();
        assert_eq!(
            ext.after(&det).unwrap().as_str(),
            "ssd_mobilenetv2_oidv4_24cls@1+effnet-lite0@1+simhash64@1"
        );
    }

    #[test]
    fn model_versions_refuse_empty_and_odd_characters() {
        assert!(ModelVersion::new("").is_err());
        assert!(ModelVersion::new("a b").is_err());
        assert!(ModelVersion::new("x'; DROP").is_err());
        assert!(ModelVersion::new("a".repeat(201)).is_err());
    }

    #[test]
    fn image_ids_parse_with_whitespace() {
        assert_eq!(" 42 ".parse::<ImageId>().unwrap(), ImageId(42));
        assert!("-1".parse::<ImageId>().is_err());
    }
}
