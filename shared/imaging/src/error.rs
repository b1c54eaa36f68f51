use imgfeat_core::{CropRect, FailureKind, FailureReason};

/// Everything that can go wrong turning bytes into pixels and back.
///
/// Variants caused by the input (empty, too large, unknown format, corrupt) are
/// permanent failures of that image; the rest are caller mistakes or library faults and
/// map to [`FailureKind::Internal`].
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("the image is empty (0 bytes)")]
    Empty,

    #[error("the image is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },

    #[error(
        "the image header claims {width}x{height} = {pixels} pixels, over the limit of {limit} pixels"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },

    /// The decoder's own allocation guard tripped: a header we could not size up front,
    /// or a decoder needing far more working memory than the pixel count suggests.
    #[error("decoding the {format} image would need more memory than allowed: {detail}")]
    MemoryLimit {
        format: &'static str,
        detail: String,
    },

    #[error(
        "not a recognised image format (starts with {head}); we decode JPEG, PNG, WebP, GIF, BMP and TIFF"
    )]
    UnrecognisedFormat { head: String },

    #[error("{format} images are not supported; we decode JPEG, PNG, WebP, GIF, BMP and TIFF")]
    UnsupportedFormat { format: String },

    #[error("the {format} image uses a feature we cannot decode: {detail}")]
    UnsupportedFeature {
        format: &'static str,
        detail: String,
    },

    #[error("the {format} image is corrupt or truncated: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },

    #[error("region {region:?} is empty or not inside the {width}x{height} image")]
    InvalidRegion {
        region: CropRect,
        width: u32,
        height: u32,
    },

    #[error("target size {width}x{height} is empty")]
    EmptyTarget { width: u32, height: u32 },

    #[error("output buffer holds {got} values, but {width}x{height} RGB needs {expected}")]
    OutputLength {
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },

    #[error("JPEG quality must be 1..=100, got {0}")]
    InvalidQuality(u8),

    #[error("JPEG cannot hold a {width}x{height} image (each side must be 1..=65535)")]
    JpegDimensions { width: u32, height: u32 },

    #[error("resizing failed: {0}")]
    Resize(String),

    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

impl ImagingError {
    pub fn kind(&self) -> FailureKind {
        match self {
            ImagingError::Empty => FailureKind::Empty,
            ImagingError::TooLarge { .. } => FailureKind::TooLarge,
            ImagingError::TooManyPixels { .. } | ImagingError::MemoryLimit { .. } => {
                FailureKind::TooManyPixels
            }
            ImagingError::UnrecognisedFormat { .. }
            | ImagingError::UnsupportedFormat { .. }
            | ImagingError::UnsupportedFeature { .. } => FailureKind::UnsupportedFormat,
            ImagingError::Corrupt { .. } => FailureKind::Corrupt,
            ImagingError::InvalidRegion { .. }
            | ImagingError::EmptyTarget { .. }
            | ImagingError::OutputLength { .. }
            | ImagingError::InvalidQuality(_)
            | ImagingError::JpegDimensions { .. }
            | ImagingError::Resize(_)
            | ImagingError::Encode(_) => FailureKind::Internal,
        }
    }

    /// The failure as recorded and dead-lettered by the pipeline.
    pub fn reason(&self) -> FailureReason {
        FailureReason::new(self.kind(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_failures_are_permanent_kinds_with_their_message() {
        let e = ImagingError::TooLarge { size: 10, limit: 5 };
        let r = e.reason();
        assert_eq!(r.kind, FailureKind::TooLarge);
        assert_eq!(
            r.message,
            "the image is 10 bytes, over the limit of 5 bytes"
        );
        let mem = ImagingError::MemoryLimit {
            format: "TIFF",
            detail: "x".into(),
        };
        assert_eq!(mem.kind(), FailureKind::TooManyPixels);
        let feature = ImagingError::UnsupportedFeature {
            format: "JPEG",
            detail: "12-bit".into(),
        };
        assert_eq!(feature.kind(), FailureKind::UnsupportedFormat);
        assert_eq!(
            ImagingError::InvalidQuality(0).kind(),
            FailureKind::Internal
        );
    }
}
