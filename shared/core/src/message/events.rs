//! Events: facts announced on fanout exchanges, for whoever follows them (the search
//! shards), as opposed to jobs, which one worker takes. Same envelope and schema version
//! as the jobs (`encode`/`decode`, [`crate::message::SCHEMA_VERSION`]):
//! - code stored: `{"v":3,"image_id":7,"code_version":"ssd@1+bb@2+head@3","bits":64,
//!   "code":"<hex, as imgfeat show prints it>","stored_at_ms":1700000000000}`
//! - duplicate found: `{"v":3,"image_id":7,"code_version":"...","neighbours":
//!   [{"image_id":3,"distance":4}],"shard":0}`: the neighbours ONE shard holds; every
//!   shard sees every code, so the union over shards is the complete answer.

use serde::{Deserialize, Serialize};

use crate::{BinaryCode, CodeRecord, ImageId, ModelVersion};

use super::MessageError;

/// A code became durable in the store: published by the extractor after the write and
/// before its job is acked, so a follower never hears of a code it cannot read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CodeStoredWire", into = "CodeStoredWire")]
pub struct CodeStored {
    pub image_id: ImageId,
    pub code_version: ModelVersion,
    pub code: BinaryCode,
    /// Unix milliseconds when the store confirmed the write: followers' lag is measured
    /// from here.
    pub stored_at_ms: u64,
}

impl CodeStored {
    pub fn of(record: &CodeRecord, stored_at_ms: u64) -> Self {
        Self {
            image_id: record.image_id,
            code_version: record.model_version.clone(),
            code: record.code.clone(),
            stored_at_ms,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CodeStoredWire {
    image_id: ImageId,
    code_version: ModelVersion,
    bits: u32,
    code: String,
    stored_at_ms: u64,
}

impl TryFrom<CodeStoredWire> for CodeStored {
    type Error = MessageError;

    fn try_from(wire: CodeStoredWire) -> Result<Self, Self::Error> {
        let bytes = hex::decode(&wire.code)
            .map_err(|e| MessageError::Malformed(format!("code is not hex: {e}")))?;
        let code = BinaryCode::from_bytes(wire.bits, bytes)
            .map_err(|e| MessageError::Malformed(format!("code: {e}")))?;
        Ok(Self {
            image_id: wire.image_id,
            code_version: wire.code_version,
            code,
            stored_at_ms: wire.stored_at_ms,
        })
    }
}

impl From<CodeStored> for CodeStoredWire {
    fn from(e: CodeStored) -> Self {
        Self {
            image_id: e.image_id,
            code_version: e.code_version,
            bits: e.code.bits(),
            code: e.code.to_hex(),
            stored_at_ms: e.stored_at_ms,
        }
    }
}

/// A stored image within the dedup radius of a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Neighbour {
    pub image_id: ImageId,
    pub distance: u32,
}

/// Near-duplicates of a new code that one search shard holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateFound {
    pub image_id: ImageId,
    pub code_version: ModelVersion,
    /// Nearest first (`distance`, then `image_id`); never empty.
    pub neighbours: Vec<Neighbour>,
    /// The shard that holds these neighbours.
    pub shard: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{decode, encode};

    fn version() -> ModelVersion {
        ModelVersion::new("ssd@1+bb@2+head@3").unwrap()
    }

    #[test]
    fn code_stored_round_trips_with_its_code_in_hex() {
        let event = CodeStored {
            image_id: ImageId(u64::MAX),
            code_version: version(),
            code: BinaryCode::from_bytes(64, vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff]).unwrap(),
            stored_at_ms: 5,
        };
        let bytes = encode(&event);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":3,"image_id":18446744073709551615,"code_version":"ssd@1+bb@2+head@3","bits":64,"code":"deadbeef000102ff","stored_at_ms":5}"#
        );
        assert_eq!(decode::<CodeStored>(&bytes).unwrap(), event);
    }

    #[test]
    fn code_stored_with_a_wrong_length_or_no_hex_is_refused() {
        for body in [
            r#"{"v":2,"image_id":1,"code_version":"a@1","bits":64,"code":"dead","stored_at_ms":1}"#,
            r#"{"v":2,"image_id":1,"code_version":"a@1","bits":16,"code":"zzzz","stored_at_ms":1}"#,
            r#"{"v":2,"image_id":1,"code_version":"a@1","bits":0,"code":"","stored_at_ms":1}"#,
            r#"{"v":2,"image_id":1,"code_version":"a@1","bits":16,"code":"dead"}"#,
        ] {
            assert!(
                matches!(
                    decode::<CodeStored>(body.as_bytes()),
                    Err(MessageError::Malformed(_))
                ),
                "{body}"
            );
        }
        assert_eq!(
            decode::<CodeStored>(
                br#"{"v":4,"image_id":1,"code_version":"a@1","bits":16,"code":"dead","stored_at_ms":1}"#
            ),
            Err(MessageError::UnknownVersion(4))
        );
    }

    #[test]
    fn duplicate_found_round_trips() {
        let event = DuplicateFound {
            image_id: ImageId(1 << 63),
            code_version: version(),
            neighbours: vec![Neighbour {
                image_id: ImageId(3),
                distance: 4,
            }],
            shard: 1,
        };
        let bytes = encode(&event);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":3,"image_id":9223372036854775808,"code_version":"ssd@1+bb@2+head@3","neighbours":[{"image_id":3,"distance":4}],"shard":1}"#
        );
        assert_eq!(decode::<DuplicateFound>(&bytes).unwrap(), event);
    }
}
