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

/// A crop cut from a JPEG's own data by [`crop_jpeg_lossless`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LosslessCrop {
    pub jpeg: Vec<u8>,
    /// What the crop shows, in the file's pixels: the region asked for, its left and top
    /// edges moved out to the JPEG's block grid.
    pub covers: CropRect,
}

/// `region` of the JPEG `jpeg` cut from its compressed data (libjpeg-turbo's lossless
/// crop, `jpegtran -crop`): no pixel decode and no second encode, so no generation loss
/// (but the whole file is entropy-decoded, which costs more than encoding a crop). A JPEG can only be cut on its block grid (8 or 16 pixels, by its
/// chroma subsampling), so the crop starts up to 15 pixels left of and above `region`;
/// its right and bottom edges are `region`'s. Metadata (EXIF, ICC) is not copied, as in
/// a re-encoded crop.
///
/// `region` is in the file's own pixel grid: a caller whose image was turned by EXIF
/// orientation must not use this. `None` when the data cannot be cut (not a JPEG, CMYK,
/// lossless JPEG, unknown subsampling) or the region is not inside it.
pub fn crop_jpeg_lossless(jpeg: &[u8], region: CropRect) -> Option<LosslessCrop> {
    turbo::crop_lossless(jpeg, region)
        .map(|(jpeg, covers)| LosslessCrop { jpeg, covers })
        .map_err(|e| tracing::debug!(error = %e, "no lossless crop, re-encoding"))
        .ok()
}
