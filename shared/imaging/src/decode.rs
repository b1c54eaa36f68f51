//! Bytes to RGB8, with every guard against hostile input applied before the pixels are
//! allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};

use crate::ImagingError;
use crate::shrink::{Decoded, shrink_factor};
use crate::turbo;

/// How much input [`decode_rgb`] accepts. Both limits are checked before any pixel
/// buffer exists, so a hostile file costs only its header parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest encoded file accepted. Default 64 MiB: a 100-megapixel camera JPEG is
    /// ~30-50 MB, so anything beyond that is not a photo we want to embed.
    pub max_bytes: u64,
    /// Largest width x height the header may claim. Default 8192 x 8192 = 64 Mi pixels
    /// (~200 MB as RGB8): above any phone camera, small enough that a bounded decode
    /// pool of a few threads stays within a worker's memory.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_pixels: 8192 * 8192,
        }
    }
}

/// Widest pixel a supported decoder can produce (RGBA, 32-bit float, from TIFF).
const MAX_BYTES_PER_PIXEL: u64 = 16;
/// Decoder working memory beyond the output buffer (tables, row buffers, inflate window).
const DECODER_HEADROOM: u64 = 64 * 1024 * 1024;

impl DecodeLimits {
    /// The `image` crate's own allocation cap: a second guard for decoders whose
    /// internal buffers are not sized by the header we checked.
    fn image_limits(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(
            self.max_pixels
                .saturating_mul(MAX_BYTES_PER_PIXEL)
                .saturating_add(DECODER_HEADROOM),
        );
        limits
    }
}

/// Decodes a JPEG, PNG, WebP, GIF (first frame), BMP or TIFF, recognised by its content
/// rather than its name, into upright RGB8.
///
/// EXIF orientation is applied, so boxes and crops refer to the image as people see
/// it. (PIL's `Image.open` does not do this; the reference photos carry no rotation.)
/// Alpha is dropped, not composited, exactly like PIL's `.convert("RGB")`; gray is
/// replicated to RGB, CMYK is converted by the JPEG decoder, 16-bit and float samples
/// are scaled to 8 bits.
pub fn decode_rgb(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, ImagingError> {
    decode(bytes, limits, |_| 1).map(|d| d.image)
}

/// [`decode_rgb`], saying what the pixels are of, with optional shrink-on-load: with
/// `shrink_to` set, a JPEG is decoded at the smallest of 1/8, 1/4, 1/2 and full size that
/// still covers it on both sides (Pillow's `draft("RGB", shrink_to)`), which saves most
/// of the decode and of the resize after it for photos several times the model's input.
/// Other formats, and JPEGs libjpeg-turbo declines, are decoded at full size (`shrink`
/// 1), as Pillow's draft leaves them.
pub fn decode_image(
    bytes: &[u8],
    limits: &DecodeLimits,
    shrink_to: Option<(u32, u32)>,
) -> Result<Decoded, ImagingError> {
    decode(bytes, limits, |original| {
        shrink_to.map_or(1, |target| shrink_factor(original, target))
    })
}

/// [`decode_image`] at 1/`shrink` of the size whatever the image's, for a JPEG
/// libjpeg-turbo takes (others, and a JPEG it declines, come back at full size, as
/// their `shrink` says).
pub(crate) fn decode_scaled(
    bytes: &[u8],
    limits: &DecodeLimits,
    shrink: u32,
) -> Result<Decoded, ImagingError> {
    decode(bytes, limits, |_| shrink)
}

/// Decodes `bytes` at the scale `pick` chooses from the upright full size.
fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    pick: impl FnOnce((u32, u32)) -> u32,
) -> Result<Decoded, ImagingError> {
    if bytes.is_empty() {
        return Err(ImagingError::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(ImagingError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    let format = sniff(bytes)?;
    let name = format_name(format);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = limits.image_limits();
    reader.limits(image_limits.clone());
    // Constructing the decoder parses only the header, so this is where a bomb is caught.
    let mut decoder = reader.into_decoder().map_err(|e| classify(name, e))?;

    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(ImagingError::Corrupt {
            format: name,
            detail: format!("the header claims a {width}x{height} image"),
        });
    }
    image_limits
        .reserve(decoder.total_bytes())
        .map_err(|e| classify(name, e))?;
    if format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }

    // A broken EXIF block should not cost us an otherwise good photo.
    let orientation = decoder.orientation().unwrap_or_else(|e| {
        tracing::debug!(error = %e, "unreadable EXIF orientation, keeping the image as stored");
        image::metadata::Orientation::NoTransforms
    });
    use image::metadata::Orientation;
    let swaps = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let original = if swaps {
        (height, width)
    } else {
        (width, height)
    };
    let shrink = pick(original);
    let turbo = if format == ImageFormat::Jpeg {
        turbo::decode_rgb(bytes, width, height, shrink)
    } else {
        None
    };
    let (decoded, shrink) = match turbo {
        Some(rgb) => (rgb, shrink),
        None => (
            DynamicImage::from_decoder(decoder)
                .map_err(|e| classify(name, e))?
                .into_rgb8(),
            1,
        ),
    };

    // Rotate after the conversion: fewer bytes per pixel to move.
    let mut rgb = DynamicImage::ImageRgb8(decoded);
    rgb.apply_orientation(orientation);
    Ok(Decoded {
        image: rgb.into_rgb8(),
        original,
        shrink,
        exif_turned: orientation != Orientation::NoTransforms,
    })
}

fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImagingError> {
    match image::guess_format(bytes) {
        Ok(
            format @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp
            | ImageFormat::Tiff),
        ) => Ok(format),
        Ok(other) => Err(ImagingError::UnsupportedFormat {
            format: format!("{other:?}"),
        }),
        Err(_) => Err(ImagingError::UnrecognisedFormat {
            head: describe_head(bytes),
        }),
    }
}

/// The first bytes, printable, so that a log line shows what the file actually was
/// (HTML error pages and JSON are common impostors).
fn describe_head(bytes: &[u8]) -> String {
    let head: String = bytes
        .iter()
        .take(12)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    format!("\"{head}\"")
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        _ => "image",
    }
}

fn classify(format: &'static str, error: ImageError) -> ImagingError {
    match error {
        ImageError::Limits(e) => ImagingError::MemoryLimit {
            format,
            detail: e.to_string(),
        },
        ImageError::Unsupported(e) => ImagingError::UnsupportedFeature {
            format,
            detail: e.to_string(),
        },
        // Reading from memory can only fail at the end of the data: a truncated file.
        ImageError::IoError(e) => ImagingError::Corrupt {
            format,
            detail: format!("unexpected end of data ({e})"),
        },
        ImageError::Decoding(e) => ImagingError::Corrupt {
            format,
            detail: e.to_string(),
        },
        ImageError::Parameter(e) => ImagingError::Corrupt {
            format,
            detail: e.to_string(),
        },
        ImageError::Encoding(e) => ImagingError::Corrupt {
            format,
            detail: e.to_string(),
        },
    }
}

/// The JPEG decoder pads a truncated scan with grey instead of failing, which would
/// embed half a photo. PIL refuses such files ("image file is truncated"), and so do we.
///
/// Walks the marker structure up to the end-of-image marker: segments are skipped by
/// their length (so an EXIF thumbnail's own markers are never seen), entropy-coded data
/// by scanning for 0xFF (inside it 0xFF is always followed by 0x00 or a restart marker).
/// Stopping at the first EOI keeps data appended after it (motion photos append an MP4)
/// from confusing the check.
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), ImagingError> {
    if jpeg_reaches_eoi(bytes) {
        Ok(())
    } else {
        Err(ImagingError::Corrupt {
            format: "JPEG",
            detail: "the data ends before the end-of-image marker (truncated file)".into(),
        })
    }
}

fn jpeg_reaches_eoi(bytes: &[u8]) -> bool {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    let mut i = 0;
    loop {
        let Some(ff) = memchr::memchr(0xFF, &bytes[i..]) else {
            return false;
        };
        i += ff;
        // A marker may be preceded by any number of 0xFF fill bytes.
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            EOI => return true,
            // Stuffed zero, restart markers, TEM and SOI carry no length.
            0x00 | 0x01 | 0xD0..=0xD7 | SOI => {}
            _ => {
                let Some(len) = bytes.get(i..i + 2) else {
                    return false;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return false;
                }
                i += len;
                if i > bytes.len() {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP1 segment whose payload holds a fake EOI (like an EXIF thumbnail),
    /// SOS with its header, entropy-coded data with a stuffed 0xFF and a restart marker.
    fn skeleton() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        j
    }

    #[test]
    fn a_jpeg_is_complete_only_when_its_own_eoi_is_reached() {
        let mut j = skeleton();
        // The EOI inside the APP1 payload does not count: this file is truncated.
        assert!(!jpeg_reaches_eoi(&j));
        j.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_reaches_eoi(&j));
        // Data appended after the EOI (motion photos append a video) is ignored, even
        // when it contains a scan marker.
        j.extend_from_slice(&[0x00, 0xFF, 0xDA, 0x00, 0x10]);
        assert!(jpeg_reaches_eoi(&j));
    }

    #[test]
    fn a_segment_length_past_the_end_is_truncation() {
        assert!(!jpeg_reaches_eoi(&[
            0xFF, 0xD8, 0xFF, 0xE0, 0x40, 0x00, 0xFF, 0xD9
        ]));
        assert!(!jpeg_reaches_eoi(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]));
        assert!(!jpeg_reaches_eoi(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]));
        assert!(!jpeg_reaches_eoi(&[0xFF, 0xD8, 0xFF]));
    }

    #[test]
    fn default_limits_are_documented_values() {
        let limits = DecodeLimits::default();
        assert_eq!(limits.max_bytes, 64 << 20);
        assert_eq!(limits.max_pixels, 8192 * 8192);
        assert!(limits.image_limits().max_alloc.unwrap_or(0) >= 8192 * 8192 * 16);
    }

    #[test]
    fn heads_of_unknown_files_are_printable() {
        assert_eq!(
            describe_head(b"{\"error\":\n\x00\x01}"),
            r#""{\"error\":\n\x00\x01""#
        );
    }
}
