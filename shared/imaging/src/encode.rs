use image::RgbImage;
use imgfeat_core::CropRect;
use turbojpeg::{Image, PixelFormat};

use crate::ImagingError;
use crate::region::check_region;
use crate::turbo;

/// Encodes `img` as a baseline JPEG at `quality` (1..=100), with libjpeg-turbo.
///
/// libjpeg-turbo rather than a pure-Rust encoder because the crop's encode is the largest
/// piece of per-image CPU outside the models: it measured 2.4x faster than `jpeg-encoder`
/// (SIMD build) on the same crops, and it is the library Pillow writes the reference's
/// crops with.
///
/// Chroma is always subsampled 4:2:0, whatever the quality: it is what PIL's
/// `save(..., "JPEG")` does by default (so crops look like the reference's), it makes
/// files about a third smaller than 4:4:4, and the crop is only ever shrunk again to the
/// network's input size, where the lost chroma resolution does not survive anyway.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    encode_jpeg_region(img, CropRect::whole(img.width(), img.height()), quality)
}

/// Encodes `region` of `img` as [`encode_jpeg`] would encode a copy of it, reading the
/// rows in place (libjpeg-turbo takes a row pitch), so the crop is never copied out.
pub fn encode_jpeg_region(
    img: &RgbImage,
    region: CropRect,
    quality: u8,
) -> Result<Vec<u8>, ImagingError> {
    if !(1..=100).contains(&quality) {
        return Err(ImagingError::InvalidQuality(quality));
    }
    let (width, height) = (region.width, region.height);
    if width == 0 || height == 0 || width > 65_535 || height > 65_535 {
        return Err(ImagingError::JpegDimensions { width, height });
    }
    check_region(region, img.width(), img.height())?;
    let pitch = img.width() as usize * 3;
    let start = region.y as usize * pitch + region.x as usize * 3;
    let image = Image {
        pixels: &img.as_raw()[start..],
        width: width as usize,
        pitch,
        height: height as usize,
        format: PixelFormat::RGB,
    };
    turbo::encode_rgb(image, quality).map_err(|e| ImagingError::Encode(e.to_string()))
}
