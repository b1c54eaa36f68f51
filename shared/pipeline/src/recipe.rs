//! The image recipe: what is done to an image around the models, in one place for the
//! worker stages, `index`, serve and the tools alike, so all give the same boxes and
//! codes. Decode and stretch to the detector's input; choose the main object, crop the
//! original to it, encode the stored crop and stretch the region to the extractor's
//! input; and turn the pixels an extract job carries into the backbone's tensor.

use imgfeat_core::message::CropPixels;
use imgfeat_core::{
    CropRect, Detection, DetectionRecord, FailureKind, FailureReason, ImageId, ModelVersion,
};
use imgfeat_imaging::{DecodeLimits, RgbImage};
use imgfeat_model::postprocess::{MainObjectRule, choose_main_object};

/// Builds one image's record and crop; see [`build_record`].
pub type RecordBuilder = fn(
    ImageId,
    &RgbImage,
    Vec<Detection>,
    &RecordSpec,
) -> Result<(DetectionRecord, CropPixels), FailureReason>;

/// What building a record needs besides the image and its detections.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    pub version: ModelVersion,
    pub rule: MainObjectRule,
    /// JPEG quality of the stored crop.
    pub jpeg_quality: u8,
    /// Longest side of the stored crop; unset: the original's resolution.
    pub crop_max_side: Option<u32>,
    /// The extractor's input size.
    pub crop_size: (u32, u32),
}

/// Decodes `bytes` and stretches the whole image to the detector's `input` size: every
/// detector input goes through this, in the workers and in `imgfeat-serve` alike.
pub fn detector_input(
    bytes: &[u8],
    limits: &DecodeLimits,
    (w, h): (u32, u32),
) -> Result<(RgbImage, Vec<f32>), FailureReason> {
    let image = imgfeat_imaging::decode_rgb(bytes, limits).map_err(|e| e.reason())?;
    let mut tensor = vec![0f32; (w * h * 3) as usize];
    let whole = CropRect::whole(image.width(), image.height());
    imgfeat_imaging::resize_to_tensor(&image, whole, w, h, &mut tensor).map_err(|e| e.reason())?;
    Ok((image, tensor))
}

/// Chooses the main object, crops the ORIGINAL image to it and encodes the crop for
/// the store; and stretches the same region of the original to the extractor's input
/// (`crop_size`), which is what the code is computed from, handed on as it is.
///
/// The code comes from the original pixels, not from the stored JPEG, because that is
/// what the Python reference embeds (`resize(img[y1:y2, x1:x2])`), and because it
/// spares the extractor a store read per image. The pixels travel losslessly (a PNG
/// on the broker), so one process and the fleet give the reference's codes alike.
pub fn build_record(
    image_id: ImageId,
    image: &RgbImage,
    detections: Vec<Detection>,
    spec: &RecordSpec,
) -> Result<(DetectionRecord, CropPixels), FailureReason> {
    let (width, height) = (image.width(), image.height());
    let main = choose_main_object(&detections, width, height, &spec.rule);
    let crop_jpeg = stored_crop(image, main.crop, spec.jpeg_quality, spec.crop_max_side)
        .map_err(|e| e.reason())?;
    let (cw, ch) = spec.crop_size;
    let pixels = imgfeat_imaging::resize_rgb(image, main.crop, cw, ch).map_err(|e| e.reason())?;
    let handed_on = CropPixels::new(cw, ch, pixels)
        .map_err(|e| FailureReason::new(FailureKind::Internal, format!("resized crop: {e}")))?;
    let record = DetectionRecord {
        image_id,
        model_version: spec.version.clone(),
        image_width: width,
        image_height: height,
        detections,
        main,
        crop_jpeg,
    };
    Ok((record, handed_on))
}

/// The stored JPEG of `region`: at the original's resolution, or scaled down to
/// `max_side` (aspect kept) when it is longer. `imgfeat plan` estimates a cap's savings
/// with it.
pub fn stored_crop(
    image: &RgbImage,
    region: imgfeat_core::CropRect,
    jpeg_quality: u8,
    max_side: Option<u32>,
) -> Result<Vec<u8>, imgfeat_imaging::ImagingError> {
    let longest = region.width.max(region.height);
    match max_side {
        Some(cap) if cap > 0 && longest > cap => {
            let scale = f64::from(cap) / f64::from(longest);
            let w = ((f64::from(region.width) * scale).round() as u32).clamp(1, cap);
            let h = ((f64::from(region.height) * scale).round() as u32).clamp(1, cap);
            let pixels = imgfeat_imaging::resize_rgb(image, region, w, h)?;
            let small = RgbImage::from_raw(w, h, pixels).ok_or_else(|| {
                imgfeat_imaging::ImagingError::Encode("resized crop of the wrong size".into())
            })?;
            imgfeat_imaging::encode_jpeg(&small, jpeg_quality)
        }
        _ => imgfeat_imaging::encode_jpeg_region(image, region, jpeg_quality),
    }
}

/// The backbone's input tensor from a schema-2 job's crop JPEG, already stretched to its
/// `input` size; `Err(size)` when the crop is another size.
pub fn crop_jpeg_tensor(
    jpeg: &[u8],
    limits: &DecodeLimits,
    input: (u32, u32),
) -> Result<Result<Vec<f32>, (u32, u32)>, FailureReason> {
    let image = imgfeat_imaging::decode_rgb(jpeg, limits).map_err(|e| e.reason())?;
    if image.dimensions() != input {
        return Ok(Err(image.dimensions()));
    }
    pixels_tensor(image.as_raw()).map(Ok)
}

/// The backbone's input tensor from the pixels an extract job carries, in the workers
/// and in `imgfeat-serve` alike.
pub fn pixels_tensor(rgb: &[u8]) -> Result<Vec<f32>, FailureReason> {
    let mut tensor = vec![0f32; rgb.len()];
    imgfeat_imaging::rgb_to_tensor(rgb, &mut tensor).map_err(|e| e.reason())?;
    Ok(tensor)
}
