//! JPEG through libjpeg-turbo, the library Pillow uses: the pixel decode of the common
//! case, and the crop's encode.
//!
//! [`decode_rgb`](crate::decode_rgb) keeps every guard (format sniffing, size and pixel
//! limits, truncation, EXIF orientation) and its error messages in the `image` crate
//! path; this only replaces the pixel decode of a JPEG that passed them. Anything
//! libjpeg-turbo declines or warns about (CMYK, 12-bit, odd sampling, corrupt data) goes
//! back to that path, which decides as it always did.

use std::cell::RefCell;
use std::thread::LocalKey;

use image::RgbImage;
use imgfeat_core::CropRect;
use turbojpeg::{
    Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp, Transform,
    TransformCrop, Transformer,
};

/// Progressive files may hold this many scans; libjpeg-turbo's advice for untrusted
/// input, since each scan re-reads the whole coefficient buffer (a cheap CPU bomb).
pub(crate) const MAX_SCANS: u32 = 500;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
    static TRANSFORMER: RefCell<Option<Transformer>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's handle in `key`, made by `make` on first use: a handle
/// holds libjpeg's tables and work buffers, worth keeping from one image to the next.
fn with_handle<H: 'static, R>(
    key: &'static LocalKey<RefCell<Option<H>>>,
    make: impl FnOnce() -> Result<H, turbojpeg::Error>,
    f: impl FnOnce(&mut H) -> Result<R, turbojpeg::Error>,
) -> Result<R, turbojpeg::Error> {
    key.with_borrow_mut(|slot| {
        let handle = match slot.as_mut() {
            Some(h) => h,
            None => slot.insert(make()?),
        };
        f(handle)
    })
}

/// Decodes `bytes` (a JPEG whose header said `width` x `height`) to RGB8 at 1/`shrink`
/// of its size (1, 2, 4 or 8; scaled in the inverse DCT), or `None` when libjpeg-turbo
/// cannot do it cleanly.
pub(crate) fn decode_rgb(bytes: &[u8], width: u32, height: u32, shrink: u32) -> Option<RgbImage> {
    let make = || {
        let mut d = Decompressor::new()?;
        d.set_scan_limit(MAX_SCANS)?;
        Ok(d)
    };
    with_handle(&DECOMPRESSOR, make, |d| {
        decode_with(d, bytes, width, height, shrink)
    })
    .map_err(
        |e| tracing::debug!(error = %e, "libjpeg-turbo declined, decoding with the image crate"),
    )
    .ok()
}

/// Encodes `image` as a baseline 4:2:0 JPEG at `quality`.
pub(crate) fn encode_rgb(image: Image<&[u8]>, quality: u8) -> Result<Vec<u8>, turbojpeg::Error> {
    with_handle(&COMPRESSOR, Compressor::new, |c| {
        c.set_quality(i32::from(quality))?;
        c.set_subsamp(Subsamp::Sub2x2)?;
        c.compress_to_vec(image)
    })
}

/// `region` cut from `bytes`' compressed data, its left and top edges moved out to the
/// block grid; with the rectangle the cut covers.
pub(crate) fn crop_lossless(
    bytes: &[u8],
    region: CropRect,
) -> Result<(Vec<u8>, CropRect), turbojpeg::Error> {
    let declined = |why: String| turbojpeg::Error::TurboJpegError(why);
    let header = turbojpeg::read_header(bytes)?;
    let colour = matches!(header.colorspace, Colorspace::YCbCr | Colorspace::Gray);
    if !colour || header.is_lossless || header.subsamp == Subsamp::Unknown {
        return Err(declined(format!(
            "{:?} {:?} not cut",
            header.colorspace, header.subsamp
        )));
    }
    let (x, y) = (region.x as usize, region.y as usize);
    let (right, bottom) = (x + region.width as usize, y + region.height as usize);
    if region.width == 0 || region.height == 0 || right > header.width || bottom > header.height {
        return Err(declined(format!("{region:?} outside the image")));
    }
    let (mcu_w, mcu_h) = header.subsamp.mcu_size();
    let (x0, y0) = (x - x % mcu_w, y - y % mcu_h);
    let mut transform = Transform::default();
    transform.crop = Some(TransformCrop {
        x: x0,
        y: y0,
        width: Some(right - x0),
        height: Some(bottom - y0),
    });
    // Like a re-encoded crop: no EXIF (location, orientation) or ICC profile rides along.
    transform.copy_none = true;
    let cut = with_handle(&TRANSFORMER, Transformer::new, |t| {
        t.transform_to_owned(&transform, bytes)
    })?;
    let covers = CropRect {
        x: x0 as u32,
        y: y0 as u32,
        width: (right - x0) as u32,
        height: (bottom - y0) as u32,
    };
    Ok((cut.to_vec(), covers))
}

fn decode_with(
    decompressor: &mut Decompressor,
    bytes: &[u8],
    width: u32,
    height: u32,
    shrink: u32,
) -> Result<RgbImage, turbojpeg::Error> {
    let header = decompressor.read_header(bytes)?;
    // CMYK and YCCK need the inversion rules the image crate already applies.
    let colour = matches!(
        header.colorspace,
        Colorspace::YCbCr | Colorspace::RGB | Colorspace::Gray
    );
    // Both parsers must agree on the size, or the guards checked another image.
    if !colour || (header.width, header.height) != (width as usize, height as usize) {
        return Err(turbojpeg::Error::TurboJpegError(format!(
            "{:?} {}x{} not taken",
            header.colorspace, header.width, header.height
        )));
    }
    // Set on every call: the handle is reused from image to image.
    let factor = ScalingFactor::new(1, shrink.max(1) as usize);
    decompressor.set_scaling_factor(factor)?;
    let out = header.scaled(factor);
    let mut pixels = vec![0u8; out.width * out.height * 3];
    decompressor.decompress(
        bytes,
        Image {
            pixels: pixels.as_mut_slice(),
            width: out.width,
            pitch: out.width * 3,
            height: out.height,
            format: PixelFormat::RGB,
        },
    )?;
    RgbImage::from_raw(out.width as u32, out.height as u32, pixels)
        .ok_or_else(|| turbojpeg::Error::TurboJpegError("buffer size".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::PathBuf;

    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        std::fs::read(root.join(path)).unwrap()
    }

    #[test]
    fn a_photo_decodes_to_its_header_size() {
        let img = decode_rgb(&fixture("photos/darknet_dog.jpg"), 768, 576, 1).unwrap();
        assert_eq!(img.dimensions(), (768, 576));
        // Not a blank buffer: a photo has many distinct values.
        let mut seen = [false; 256];
        img.as_raw()
            .iter()
            .for_each(|&v| seen[usize::from(v)] = true);
        assert!(seen.iter().filter(|&&s| s).count() > 200);
    }

    #[test]
    fn cmyk_is_left_to_the_image_crate() {
        let bytes = fixture("imaging/odd/cmyk.jpg");
        let (w, h) = image::load_from_memory(&bytes)
            .unwrap()
            .to_rgb8()
            .dimensions();
        assert!(decode_rgb(&bytes, w, h, 1).is_none());
    }

    #[test]
    fn a_size_other_than_the_checked_one_is_declined() {
        let bytes = fixture("photos/darknet_dog.jpg");
        assert!(decode_rgb(&bytes, 767, 576, 1).is_none());
    }

    #[test]
    fn corrupt_scan_data_is_declined_not_padded() {
        let mut bytes = fixture("photos/darknet_dog.jpg");
        // Garbage in the middle of the entropy-coded data: libjpeg-turbo only warns and
        // would return an image; a warning must send the file to the stricter path.
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b = 0xFF;
        }
        bytes[mid + 64] = 0xD3;
        assert!(decode_rgb(&bytes, 768, 576, 1).is_none());
    }
}
