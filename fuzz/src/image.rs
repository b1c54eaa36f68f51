use imgfeat_core::CropRect;
use imgfeat_imaging::{DecodeLimits, decode_covering, decode_rgb};

/// Small limits keep each run fast; the guards under test are the same at any size.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1 << 20,
    max_pixels: 1 << 20,
};

/// Any bytes decode to an image within the limits or to an error; never a panic, and
/// never an allocation beyond what the limits allow (libFuzzer's `-rss_limit_mb`). The
/// same for a shrunk decode and for its middle read again at full size (libjpeg-turbo's
/// partial decode, through raw bindings).
pub fn decode_image(data: &[u8]) {
    read_again(data);
    if let Ok(image) = decode_rgb(data, &LIMITS) {
        let pixels = u64::from(image.width()) * u64::from(image.height());
        assert!(pixels > 0, "an empty image was accepted");
        assert!(
            pixels <= LIMITS.max_pixels,
            "{}x{} passed a limit of {} pixels",
            image.width(),
            image.height(),
            LIMITS.max_pixels
        );
    }
}

fn read_again(data: &[u8]) {
    let Ok(shrunk) = imgfeat_imaging::decode_image(data, &LIMITS, Some((16, 16))) else {
        return;
    };
    let (w, h) = shrunk.original;
    let middle = CropRect {
        x: w / 4,
        y: h / 4,
        width: (w / 2).max(1),
        height: (h / 2).max(1),
    };
    if let Ok(pixels) = decode_covering(data, &LIMITS, &shrunk, 1, middle) {
        let r = pixels.region;
        assert!(
            r.x + r.width <= pixels.image.width() && r.y + r.height <= pixels.image.height(),
            "{r:?} outside the {}x{} pixels read",
            pixels.image.width(),
            pixels.image.height()
        );
        assert_eq!((r.width, r.height), (middle.width, middle.height));
    }
}
