//! A region of a photo read again at a finer scale than the whole image was: with
//! shrink-on-load the detector needs only ~300 pixels a side, but a small main object
//! may then cover fewer pixels than the extractor's input, so its region alone is
//! decoded at the scale that covers that input.

use image::RgbImage;
use imgfeat_core::CropRect;

use crate::decode::{DecodeLimits, decode_scaled};
use crate::region::check_region;
use crate::shrink::{Decoded, covering};
use crate::{ImagingError, turbo_region};

/// Pixels that hold a region of a photo.
#[derive(Debug, Clone)]
pub struct RegionPixels {
    pub image: RgbImage,
    /// Where the region is in `image`.
    pub region: CropRect,
}

/// `region` (in the upright original's pixels) of the photo `bytes`, whose whole decode
/// is `decoded`, at 1/`shrink` of its size: exactly the pixels that a whole decode at
/// that scale has there (Pillow's `draft` to that scale, then the covering rectangle).
///
/// A JPEG stored upright is decoded in that region only; one turned by EXIF, or one
/// whose region libjpeg-turbo declines to cut, is decoded whole at that scale, which
/// gives the same pixels for more work. A region not inside the original is an error.
pub fn decode_covering(
    bytes: &[u8],
    limits: &DecodeLimits,
    decoded: &Decoded,
    shrink: u32,
    region: CropRect,
) -> Result<RegionPixels, ImagingError> {
    let (w, h) = decoded.original;
    check_region(region, w, h)?;
    if !decoded.exif_turned {
        let scaled = (w.div_ceil(shrink), h.div_ceil(shrink));
        let wanted = covering(region, shrink, scaled);
        match turbo_region::decode_region(bytes, shrink, wanted) {
            Ok((image, region)) => return Ok(RegionPixels { image, region }),
            Err(why) => tracing::debug!(%why, "no region decode, decoding the whole image"),
        }
    }
    let whole = decode_scaled(bytes, limits, shrink)?;
    if whole.shrink != shrink {
        return Err(ImagingError::Corrupt {
            format: "JPEG",
            detail: format!(
                "decoded at 1/{} where 1/{shrink} was asked for",
                whole.shrink
            ),
        });
    }
    Ok(RegionPixels {
        region: whole.region_in_image(region),
        image: whole.image,
    })
}
