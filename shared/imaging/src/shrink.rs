//! Shrink-on-load: a JPEG decoded at 1/2, 1/4 or 1/8 of its size inside the inverse DCT,
//! when the model it feeds needs no more. This is Pillow's `Image.draft("RGB", size)`:
//! the same rule picks the factor and libjpeg-turbo does the scaled decode in both, so a
//! Python worker that drafts gets the same pixels. It changes the numbers downstream, so
//! the pipeline stores its results under a version of their own.

use image::RgbImage;
use imgfeat_core::CropRect;

/// A decoded image, possibly shrunk while it was decoded.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels: `original` divided by `shrink`, rounded up.
    pub image: RgbImage,
    /// The upright image's full size, which boxes and crops are given in.
    pub original: (u32, u32),
    /// 1 (full size), 2, 4 or 8.
    pub shrink: u32,
    /// Whether EXIF orientation turned or flipped the file's pixels: its own pixel grid
    /// (which a lossless JPEG crop cuts) is then not the upright one.
    pub exif_turned: bool,
}

impl Decoded {
    /// An image decoded at full size, upright as stored.
    pub fn full(image: RgbImage) -> Self {
        Self {
            original: image.dimensions(),
            image,
            shrink: 1,
            exif_turned: false,
        }
    }

    /// `region` of the original in this image's pixels: the smallest rectangle that
    /// covers it, never empty and always inside the image.
    pub fn region_in_image(&self, region: CropRect) -> CropRect {
        covering(region, self.shrink, self.image.dimensions())
    }

    /// The scale to read `region` of the original at so that it still covers
    /// `at_least` on both sides (Pillow's draft rule applied to the region), never
    /// coarser than this image's own.
    pub fn shrink_covering(&self, region: CropRect, at_least: (u32, u32)) -> u32 {
        let needed = shrink_factor((region.width, region.height), at_least);
        self.shrink.min(needed)
    }
}

/// `region` of an original in the pixels of its 1/`shrink` image of `size`: the smallest
/// rectangle that covers it, never empty and always inside the image.
pub(crate) fn covering(region: CropRect, shrink: u32, (w, h): (u32, u32)) -> CropRect {
    if shrink <= 1 {
        return region;
    }
    let s = u64::from(shrink);
    let (w, h) = (u64::from(w), u64::from(h));
    let x0 = (u64::from(region.x) / s).min(w.saturating_sub(1));
    let y0 = (u64::from(region.y) / s).min(h.saturating_sub(1));
    let x1 = (u64::from(region.x) + u64::from(region.width)).div_ceil(s);
    let y1 = (u64::from(region.y) + u64::from(region.height)).div_ceil(s);
    let x1 = x1.clamp(x0 + 1, w.max(x0 + 1));
    let y1 = y1.clamp(y0 + 1, h.max(y0 + 1));
    CropRect {
        x: x0 as u32,
        y: y0 as u32,
        width: (x1 - x0) as u32,
        height: (y1 - y0) as u32,
    }
}

/// Pillow's draft rule: the largest of 8, 4, 2, 1 not above the smaller of the whole
/// ratios `width / at_least.0` and `height / at_least.1`, so the shrunk image still
/// covers `at_least` on both sides.
pub(crate) fn shrink_factor((width, height): (u32, u32), (tw, th): (u32, u32)) -> u32 {
    let ratio = (width / tw.max(1)).min(height / th.max(1));
    [8, 4, 2, 1].into_iter().find(|&s| ratio >= s).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factor_is_pillows_draft_rule() {
        let t = (300, 300);
        assert_eq!(shrink_factor((4000, 3000), t), 8);
        assert_eq!(shrink_factor((2400, 1800), t), 4); // 8 and 6: 4
        assert_eq!(shrink_factor((1024, 768), t), 2);
        assert_eq!(shrink_factor((768, 576), t), 1);
        assert_eq!(shrink_factor((599, 4000), t), 1);
        assert_eq!(shrink_factor((200, 100), t), 1);
        assert_eq!(shrink_factor((1000, 1000), (0, 0)), 8);
    }

    fn shrunk(original: (u32, u32), shrink: u32) -> Decoded {
        let (w, h) = (
            original.0.div_ceil(shrink).max(1),
            original.1.div_ceil(shrink).max(1),
        );
        Decoded {
            image: RgbImage::new(w, h),
            original,
            shrink,
            exif_turned: false,
        }
    }

    #[test]
    fn a_region_maps_to_the_pixels_that_cover_it() {
        let d = shrunk((1001, 600), 4); // 251 x 150
        let r = CropRect {
            x: 5,
            y: 8,
            width: 10,
            height: 1,
        };
        assert_eq!(
            d.region_in_image(r),
            CropRect {
                x: 1,
                y: 2,
                width: 3,
                height: 1
            }
        );
        let whole = CropRect::whole(1001, 600);
        assert_eq!(d.region_in_image(whole), CropRect::whole(251, 150));
        // At full size the region is the region.
        let full = shrunk((1001, 600), 1);
        assert_eq!(full.region_in_image(r), r);
    }

    #[test]
    fn a_region_at_the_far_edge_stays_inside_and_non_empty() {
        let d = shrunk((1001, 600), 8); // 126 x 75
        let corner = CropRect {
            x: 1000,
            y: 599,
            width: 1,
            height: 1,
        };
        let m = d.region_in_image(corner);
        assert_eq!((m.x, m.y, m.width, m.height), (125, 74, 1, 1));
        // Even a hostile rectangle beyond the image maps inside it.
        let beyond = CropRect {
            x: u32::MAX,
            y: u32::MAX,
            width: u32::MAX,
            height: u32::MAX,
        };
        let m = d.region_in_image(beyond);
        assert!(m.x + m.width <= 126 && m.y + m.height <= 75 && m.width > 0 && m.height > 0);
    }
}
