//! The network input: a region of the photo stretched to the model's size, as the
//! Python reference makes it (`np.asarray(Image.fromarray(crop).resize((w, h),
//! Image.BILINEAR)).astype(np.float32)`).

use std::cell::RefCell;

use fast_image_resize::images::{CroppedImage, Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use imgfeat_core::CropRect;

use crate::ImagingError;
use crate::region::check_region;

/// Per-thread state reused across images (the resizer's own buffers, the horizontal
/// pass's output and the u8 result), so a decode-pool thread allocates nothing per
/// image once warm.
#[derive(Default)]
struct Scratch {
    resizer: Resizer,
    horizontal: Vec<u8>,
    pixels: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Stretch-resizes `region` of `img` to `width` x `height` (no letterbox) and writes
/// HWC RGB values 0..=255 as f32 into `out`, which must hold `width * height * 3`.
///
/// The filter is Pillow's `Image.BILINEAR` (a triangle filter whose support widens with
/// the downscale factor, so shrinking averages every source pixel), and results are
/// rounded to u8 before the cast, exactly like the reference.
///
/// Pillow filters rows first, rounds to u8, then filters columns. fast_image_resize
/// does columns first for u8 images, which rounds the intermediate differently and puts
/// ~15% of the values one level off. We run the two passes ourselves in Pillow's order.
///
/// The region is treated as its own image, clamped at its edges, as the reference does
/// by slicing before resizing. fast_image_resize's `ResizeOptions::crop` would instead
/// blend in pixels from outside the region along its border (Pillow's `box=`), which is
/// not what the reference computes; a zero-copy `CroppedImage` view gives the reference's
/// behaviour without copying the region.
pub fn resize_to_tensor(
    img: &RgbImage,
    region: CropRect,
    width: u32,
    height: u32,
    out: &mut [f32],
) -> Result<(), ImagingError> {
    check_output(width, height, out.len())?;
    SCRATCH.with_borrow_mut(|scratch| {
        let Scratch {
            resizer,
            horizontal,
            pixels,
        } = scratch;
        pixels.clear();
        pixels.resize(out.len(), 0);
        resize_pillow_order(resizer, horizontal, img, region, width, height, pixels)?;
        rgb_to_tensor(pixels, out)
    })
}

/// The same stretch-resize as [`resize_to_tensor`], as RGB8 bytes: the form the crop
/// travels in from the detector to the extractor (a quarter of the f32 size).
pub fn resize_rgb(
    img: &RgbImage,
    region: CropRect,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ImagingError> {
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    check_output(width, height, pixels.len())?;
    SCRATCH.with_borrow_mut(|scratch| {
        let Scratch {
            resizer,
            horizontal,
            ..
        } = scratch;
        resize_pillow_order(resizer, horizontal, img, region, width, height, &mut pixels)
    })?;
    Ok(pixels)
}

/// RGB8 bytes to the network's f32 input (values 0..=255; normalisation is in the graph).
pub fn rgb_to_tensor(rgb: &[u8], out: &mut [f32]) -> Result<(), ImagingError> {
    if rgb.len() != out.len() {
        return Err(ImagingError::Resize(format!(
            "{} bytes of pixels for a tensor of {} values",
            rgb.len(),
            out.len()
        )));
    }
    for (o, &p) in out.iter_mut().zip(rgb) {
        *o = f32::from(p);
    }
    Ok(())
}

fn check_output(width: u32, height: u32, len: usize) -> Result<(), ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::EmptyTarget { width, height });
    }
    let expected = width as usize * height as usize * 3;
    if len != expected {
        return Err(ImagingError::OutputLength {
            width,
            height,
            expected,
            got: len,
        });
    }
    Ok(())
}

fn resize_pillow_order(
    resizer: &mut Resizer,
    horizontal: &mut Vec<u8>,
    img: &RgbImage,
    region: CropRect,
    width: u32,
    height: u32,
    pixels: &mut [u8],
) -> Result<(), ImagingError> {
    check_region(region, img.width(), img.height())?;
    let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
        .map_err(|e| ImagingError::Resize(e.to_string()))?;
    let view = CroppedImage::new(&src, region.x, region.y, region.width, region.height)
        .map_err(|e| ImagingError::Resize(e.to_string()))?;
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let mut dst = Image::from_slice_u8(width, height, pixels, PixelType::U8x3)
        .map_err(|e| ImagingError::Resize(e.to_string()))?;

    if region.width != width && region.height != height {
        // Rows first into a width x region.height image, then columns.
        horizontal.clear();
        horizontal.resize(width as usize * region.height as usize * 3, 0);
        let mut rows = Image::from_slice_u8(width, region.height, horizontal, PixelType::U8x3)
            .map_err(|e| ImagingError::Resize(e.to_string()))?;
        resizer
            .resize(&view, &mut rows, &options)
            .map_err(|e| ImagingError::Resize(e.to_string()))?;
        resizer
            .resize(&rows, &mut dst, &options)
            .map_err(|e| ImagingError::Resize(e.to_string()))?;
    } else {
        // One pass (or a plain copy), where the order question does not arise.
        resizer
            .resize(&view, &mut dst, &options)
            .map_err(|e| ImagingError::Resize(e.to_string()))?;
    }
    Ok(())
}
