use imgfeat_imaging::{DecodeLimits, decode_rgb};

/// Small limits keep each run fast; the guards under test are the same at any size.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1 << 20,
    max_pixels: 1 << 20,
};

/// Any bytes decode to an image within the limits or to an error; never a panic, and
/// never an allocation beyond what the limits allow (libFuzzer's `-rss_limit_mb`).
pub fn decode_image(data: &[u8]) {
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
