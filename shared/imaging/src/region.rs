use imgfeat_core::CropRect;

use crate::ImagingError;

/// Checks that `region` is non-empty and lies inside a `width` x `height` image.
/// Sums are done in u64 so that a hostile rectangle cannot wrap around.
pub(crate) fn check_region(region: CropRect, width: u32, height: u32) -> Result<(), ImagingError> {
    let inside = region.width > 0
        && region.height > 0
        && u64::from(region.x) + u64::from(region.width) <= u64::from(width)
        && u64::from(region.y) + u64::from(region.height) <= u64::from(height);
    if inside {
        Ok(())
    } else {
        Err(ImagingError::InvalidRegion {
            region,
            width,
            height,
        })
    }
}
