//! The image recipe: what is done to an image around the models, in one place for the
//! worker stages, `index`, serve and the tools alike, so all give the same boxes and
//! codes. Decode and stretch to the detector's input; choose the main object, crop the
//! original to it, encode the stored crop and stretch the region to the extractor's
//! input; and turn the pixels an extract job carries into the backbone's tensor.

use imgfeat_core::message::CropPixels;
use imgfeat_core::{
    CropRect, Detection, DetectionRecord, FailureKind, FailureReason, ImageId, ModelVersion,
};
use imgfeat_imaging::{DecodeLimits, Decoded, RgbImage};
use imgfeat_model::postprocess::{MainObjectRule, choose_main_object};

/// Builds one image's record and crop; see [`build_record`].
pub type RecordBuilder = fn(
    ImageId,
    &Decoded,
    Option<&[u8]>,
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
    pub crop_encoding: CropEncoding,
    /// The extractor's input size.
    pub crop_size: (u32, u32),
    /// How the image was decoded, for reading the crop again at a finer scale.
    pub decoding: Decoding,
}

/// How the stored crop is made. Codes never come from it, so this changes no version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CropEncoding {
    /// The main object's pixels encoded as a new JPEG (quality `crop_jpeg_quality`),
    /// exactly the box.
    #[default]
    Reencode,
    /// Cut from the photo's own JPEG data, without a pixel decode or a second encode
    /// ([`imgfeat_imaging::crop_jpeg_lossless`]): no second generation of JPEG loss,
    /// and the original's resolution even with shrink-on-load; but the crop starts on
    /// the JPEG's block grid, up to 15 pixels left of and above the box, and keeps the
    /// photo's own quality. Where it cannot cut (not a JPEG, turned by EXIF, a
    /// `crop_max_side` to scale to), the crop is re-encoded. For fidelity, not speed:
    /// the cut entropy-decodes the whole file, which costs more than the encode it
    /// spares (docs/benchmarks.md).
    Lossless,
}

/// How images are decoded for the detector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoding {
    pub limits: DecodeLimits,
    /// Decode JPEGs at the smallest DCT scale that still covers the detector's input
    /// (Pillow's `draft`); see [`imgfeat_imaging::decode_image`]. Its results are
    /// stored under their own version ([`SHRINK_LABEL`]).
    pub shrink_on_load: bool,
    /// With `shrink_on_load`, read the main object's region again at the scale that
    /// covers the extractor's input ([`imgfeat_imaging::decode_covering`]); stored
    /// under its own version ([`REGION_LABEL`]).
    pub crop_at_extractor_scale: bool,
}

impl Decoding {
    /// Whether the photo's bytes are needed after the first decode.
    pub fn reads_again(&self) -> bool {
        self.shrink_on_load && self.crop_at_extractor_scale
    }
}

/// What a detector version decoded with shrink-on-load is suffixed with.
pub const SHRINK_LABEL: &str = "shrink";
/// What is added to [`SHRINK_LABEL`] when the crop is read again at the extractor's scale.
pub const REGION_LABEL: &str = "region";

/// The version a detector's results are stored under when its images are decoded by
/// `decoding`: shrink-on-load changes every box and code, and reading the crop again
/// every code, so each is a version of its own.
pub fn detector_version(
    version: ModelVersion,
    decoding: &Decoding,
) -> Result<ModelVersion, imgfeat_core::ids::InvalidModelVersion> {
    if decoding.reads_again() {
        ModelVersion::new(format!("{version}.{SHRINK_LABEL}.{REGION_LABEL}"))
    } else if decoding.shrink_on_load {
        ModelVersion::new(format!("{version}.{SHRINK_LABEL}"))
    } else {
        Ok(version)
    }
}

/// Decodes `bytes` and stretches the whole image to the detector's `input` size: every
/// detector input goes through this, in the workers and in `imgfeat-serve` alike.
pub fn detector_input(
    bytes: &[u8],
    decoding: &Decoding,
    (w, h): (u32, u32),
) -> Result<(Decoded, Vec<f32>), FailureReason> {
    let shrink_to = decoding.shrink_on_load.then_some((w, h));
    let decoded = imgfeat_imaging::decode_image(bytes, &decoding.limits, shrink_to)
        .map_err(|e| e.reason())?;
    let mut tensor = vec![0f32; (w * h * 3) as usize];
    let image = &decoded.image;
    let whole = CropRect::whole(image.width(), image.height());
    imgfeat_imaging::resize_to_tensor(image, whole, w, h, &mut tensor).map_err(|e| e.reason())?;
    Ok((decoded, tensor))
}

/// Chooses the main object, crops the decoded image (the original, or its shrunk
/// pixels with shrink-on-load) to it and encodes the crop for the store; and stretches
/// the same region to the extractor's input (`crop_size`), which is what the code is
/// computed from, handed on as it is.
///
/// The code comes from the original pixels, not from the stored JPEG, because that is
/// what the Python reference embeds (`resize(img[y1:y2, x1:x2])`), and because it
/// spares the extractor a store read per image. The pixels travel losslessly (a PNG
/// on the broker), so one process and the fleet give the reference's codes alike.
///
/// Boxes and the main object are in the original's pixels; an image shrunk on load is
/// cropped at the region of its own pixels that covers them, or, with
/// [`Decoding::crop_at_extractor_scale`], at that region read again from `source` at the
/// scale that covers the extractor's input.
///
/// `source` is the photo's file, for a [`CropEncoding::Lossless`] crop or a crop read
/// again.
pub fn build_record(
    image_id: ImageId,
    decoded: &Decoded,
    source: Option<&[u8]>,
    detections: Vec<Detection>,
    spec: &RecordSpec,
) -> Result<(DetectionRecord, CropPixels), FailureReason> {
    let (width, height) = decoded.original;
    let main = choose_main_object(&detections, width, height, &spec.rule);
    let finer = finer_crop(decoded, source, main.crop, spec)?;
    let (image, region) = match &finer {
        Some(pixels) => (&pixels.image, pixels.region),
        None => (&decoded.image, decoded.region_in_image(main.crop)),
    };
    let cut = source
        .filter(|_| spec.crop_encoding == CropEncoding::Lossless && !decoded.exif_turned)
        .filter(|_| {
            let longest = main.crop.width.max(main.crop.height);
            spec.crop_max_side
                .is_none_or(|cap| cap == 0 || longest <= cap)
        })
        .and_then(|file| imgfeat_imaging::crop_jpeg_lossless(file, main.crop));
    let crop_jpeg = match cut {
        Some(cut) => cut.jpeg,
        None => stored_crop(image, region, spec.jpeg_quality, spec.crop_max_side)
            .map_err(|e| e.reason())?,
    };
    let (cw, ch) = spec.crop_size;
    let pixels = imgfeat_imaging::resize_rgb(image, region, cw, ch).map_err(|e| e.reason())?;
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

/// With [`Decoding::crop_at_extractor_scale`], the main object's region read again from
/// `source` when the shrunk image holds fewer of its pixels than the extractor's input
/// needs; `None` when the shrunk pixels suffice (or the setting is off).
fn finer_crop(
    decoded: &Decoded,
    source: Option<&[u8]>,
    crop: CropRect,
    spec: &RecordSpec,
) -> Result<Option<imgfeat_imaging::RegionPixels>, FailureReason> {
    if !spec.decoding.reads_again() {
        return Ok(None);
    }
    let shrink = decoded.shrink_covering(crop, spec.crop_size);
    if shrink >= decoded.shrink {
        return Ok(None);
    }
    let bytes = source.ok_or_else(|| {
        FailureReason::new(
            FailureKind::Internal,
            "the crop is read again at the extractor's scale, but the photo's bytes were not kept",
        )
    })?;
    imgfeat_imaging::decode_covering(bytes, &spec.decoding.limits, decoded, shrink, crop)
        .map(Some)
        .map_err(|e| e.reason())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use imgfeat_core::{BoundingBox, Detection};

    use super::*;

    fn dog() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/photos/darknet_dog.jpg"
        );
        std::fs::read(path).unwrap()
    }

    /// A detection whose main-object crop is x 133..568, y 123..476 (768 x 576 photo).
    fn detection() -> Vec<Detection> {
        vec![Detection {
            bbox: BoundingBox {
                x1: 133.2,
                y1: 123.5,
                x2: 567.1,
                y2: 475.9,
            },
            score: 0.9,
            class_id: 1,
            label: "dog".into(),
        }]
    }

    fn spec(crop_encoding: CropEncoding, crop_max_side: Option<u32>) -> RecordSpec {
        RecordSpec {
            version: ModelVersion::new("ssd@1").unwrap(),
            rule: MainObjectRule::default(),
            jpeg_quality: 90,
            crop_max_side,
            crop_encoding,
            crop_size: (224, 224),
            decoding: Decoding::default(),
        }
    }

    fn stored_size(record: &DetectionRecord) -> (u32, u32) {
        imgfeat_imaging::decode_rgb(&record.crop_jpeg, &DecodeLimits::default())
            .unwrap()
            .dimensions()
    }

    fn build(decoded: &Decoded, source: Option<&[u8]>, spec: &RecordSpec) -> DetectionRecord {
        build_record(ImageId(1), decoded, source, detection(), spec)
            .unwrap()
            .0
    }

    #[test]
    fn a_lossless_crop_is_cut_from_the_file_and_re_encoded_where_it_cannot_be() {
        let file = dog();
        let decoding = Decoding::default();
        let (decoded, _) = detector_input(&file, &decoding, (300, 300)).unwrap();
        let reencoded = build(&decoded, Some(&file), &spec(CropEncoding::Reencode, None));
        let crop = reencoded.main.crop;
        assert_eq!(
            (crop.x, crop.y, crop.width, crop.height),
            (133, 123, 435, 353)
        );
        assert_eq!(stored_size(&reencoded), (435, 353));

        // Cut on the 16-pixel grid of this 4:2:0 file: from (128, 112), the same box.
        let cut = build(&decoded, Some(&file), &spec(CropEncoding::Lossless, None));
        assert_eq!(cut.main, reencoded.main);
        assert_eq!(stored_size(&cut), (440, 364));

        // Without the file, with a cap to scale to, or on an image EXIF turned: encoded.
        let no_file = build(&decoded, None, &spec(CropEncoding::Lossless, None));
        assert_eq!(no_file.crop_jpeg, reencoded.crop_jpeg);
        let capped = build(
            &decoded,
            Some(&file),
            &spec(CropEncoding::Lossless, Some(200)),
        );
        assert_eq!(stored_size(&capped), (200, 162));
        let turned = Decoded {
            exif_turned: true,
            ..decoded.clone()
        };
        let turned = build(&turned, Some(&file), &spec(CropEncoding::Lossless, None));
        assert_eq!(turned.crop_jpeg, reencoded.crop_jpeg);
    }
}
