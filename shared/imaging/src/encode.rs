use image::RgbImage;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::ImagingError;

/// Encodes `img` as a baseline JPEG at `quality` (1..=100).
///
/// Chroma is always subsampled 4:2:0, whatever the quality: it is what PIL's
/// `save(..., "JPEG")` does by default (so crops look like the reference's), it makes
/// files about a third smaller than 4:4:4, and the crop is only ever shrunk again to the
/// network's input size, where the lost chroma resolution does not survive anyway.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    if !(1..=100).contains(&quality) {
        return Err(ImagingError::InvalidQuality(quality));
    }
    let (width, height) = img.dimensions();
    let dims = (u16::try_from(width), u16::try_from(height));
    let (Ok(w), Ok(h)) = dims else {
        return Err(ImagingError::JpegDimensions { width, height });
    };
    if w == 0 || h == 0 {
        return Err(ImagingError::JpegDimensions { width, height });
    }

    // Roughly 1 bit per pixel at usual qualities; reserving it avoids regrowth copies.
    let mut out = Vec::with_capacity(img.as_raw().len() / 8 + 1024);
    let mut encoder = Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder.set_progressive(false);
    encoder
        .encode(img.as_raw(), w, h, ColorType::Rgb)
        .map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(out)
}
