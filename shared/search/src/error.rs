use std::path::PathBuf;

/// Everything the index can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("code length {0} bits is not supported (64, 128 or 256)")]
    UnsupportedBits(u32),
    #[error("code has {got} bytes, this index holds {expected}-byte codes")]
    CodeLength { expected: usize, got: usize },
    #[error("{substrings} substrings of a {bits}-bit code: each must have 1..={max} bits")]
    Substrings {
        bits: u32,
        substrings: u32,
        max: u32,
    },
    #[error("index holds at most {max} codes")]
    Full { max: usize },
    #[error("index file {path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("index file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
