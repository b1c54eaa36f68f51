//! The extractor's input as it travels in an extract job: the main object stretched to
//! the backbone's input size, RGB8, exactly the pixels the extractor embeds.
//!
//! On the wire (schema 3) the pixels are a PNG, base64 inside JSON: lossless, so a code
//! computed across the broker is the one computed in one process, bit for bit. A 224x224
//! photo crop is ~77 KB as a fast PNG against 150 KB raw (schema 1 sent them raw as
//! `rgb`, still read). Schema 2 sent a JPEG (`crop_jpeg`), lossy: still read, for the
//! jobs of detector versions that made it, whose codes carry that version's name.

use std::io::Cursor;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::MessageError;

/// JPEG bytes (schema 2 extract jobs); base64 inside JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CropJpeg(Arc<Vec<u8>>);

impl CropJpeg {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Size only, like [`CropPixels`].
impl std::fmt::Debug for CropJpeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CropJpeg({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for CropJpeg {
    type Error = MessageError;

    fn try_from(wire: String) -> Result<Self, Self::Error> {
        let bytes = BASE64
            .decode(wire.as_bytes())
            .map_err(|e| MessageError::Malformed(format!("crop JPEG: {e}")))?;
        Ok(CropJpeg::new(bytes))
    }
}

impl From<CropJpeg> for String {
    fn from(crop: CropJpeg) -> Self {
        BASE64.encode(crop.0.as_slice())
    }
}

/// RGB8 pixels, row by row, `width * height * 3` bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CropPixelsWire", into = "CropPixelsWire")]
pub struct CropPixels {
    width: u32,
    height: u32,
    rgb: Arc<Vec<u8>>,
}

impl CropPixels {
    pub fn new(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self, MessageError> {
        let expected = width as u64 * height as u64 * 3;
        if width == 0 || height == 0 || rgb.len() as u64 != expected {
            return Err(MessageError::Malformed(format!(
                "crop of {width}x{height} needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        Ok(Self {
            width,
            height,
            rgb: Arc::new(rgb),
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The pixels as a PNG. Fast compression: on photo crops it is within 8 % of the
    /// default level's size at a fraction of its time.
    pub fn to_png(&self) -> Result<Vec<u8>, MessageError> {
        let failed = |e: png::EncodingError| MessageError::Malformed(format!("crop PNG: {e}"));
        let mut out = Vec::with_capacity(self.rgb.len() / 2);
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(&self.rgb).map_err(failed)?;
        writer.finish().map_err(failed)?;
        Ok(out)
    }

    /// Pixels from a PNG that must be `width` x `height` RGB8. The decoder may allocate
    /// no more than those pixels need, so a small message cannot inflate into a large
    /// allocation.
    pub fn from_png(width: u32, height: u32, bytes: &[u8]) -> Result<Self, MessageError> {
        let malformed = |what: String| MessageError::Malformed(format!("crop PNG: {what}"));
        let expected = width as usize * height as usize * 3;
        let limits = png::Limits {
            bytes: expected.saturating_mul(2).max(1 << 16),
        };
        let decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
        let mut reader = decoder.read_info().map_err(|e| malformed(e.to_string()))?;
        let (w, h) = reader.info().size();
        let kind = reader.output_color_type();
        if (w, h) != (width, height) || kind != (png::ColorType::Rgb, png::BitDepth::Eight) {
            return Err(malformed(format!(
                "{w}x{h} {kind:?}, the job says {width}x{height} RGB8"
            )));
        }
        let mut rgb = vec![0u8; expected];
        reader
            .next_frame(&mut rgb)
            .map_err(|e| malformed(e.to_string()))?;
        Self::new(width, height, rgb)
    }
}

/// Size only: a job in a log line or a failed assertion must not print 150 KB.
impl std::fmt::Debug for CropPixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CropPixels({}x{} RGB8)", self.width, self.height)
    }
}

/// `png` (schema 3) or `rgb` (raw, schema 1): exactly one.
#[derive(Serialize, Deserialize)]
struct CropPixelsWire {
    width: u32,
    height: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    png: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rgb: Option<String>,
}

impl TryFrom<CropPixelsWire> for CropPixels {
    type Error = MessageError;

    fn try_from(wire: CropPixelsWire) -> Result<Self, Self::Error> {
        let bytes = |text: &str, what: &str| {
            BASE64
                .decode(text.as_bytes())
                .map_err(|e| MessageError::Malformed(format!("crop {what}: {e}")))
        };
        match (wire.png, wire.rgb) {
            (Some(png), None) => {
                CropPixels::from_png(wire.width, wire.height, &bytes(&png, "PNG")?)
            }
            (None, Some(rgb)) => CropPixels::new(wire.width, wire.height, bytes(&rgb, "pixels")?),
            _ => Err(MessageError::Malformed(
                "a crop carries its pixels as exactly one of `png` and `rgb`".into(),
            )),
        }
    }
}

impl From<CropPixels> for CropPixelsWire {
    fn from(crop: CropPixels) -> Self {
        // Encoding a valid RGB8 buffer into memory does not fail; if it ever did, the
        // raw pixels are just as lossless, only larger.
        let (png, rgb) = match crop.to_png() {
            Ok(png) => (Some(BASE64.encode(png)), None),
            Err(_) => (None, Some(BASE64.encode(crop.rgb.as_slice()))),
        };
        CropPixelsWire {
            width: crop.width,
            height: crop.height,
            png,
            rgb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth gradient with noise, like a photo's: it must survive exactly.
    fn pixels(w: u32, h: u32) -> Vec<u8> {
        (0..w * h * 3)
            .map(|i| ((i / 3 % w) * 255 / w + (i * 7919 % 13)) as u8)
            .collect()
    }

    #[test]
    fn pixels_travel_as_a_png_and_come_back_exactly() {
        let crop = CropPixels::new(224, 224, pixels(224, 224)).unwrap();
        let wire = serde_json::to_string(&crop).unwrap();
        assert!(
            wire.starts_with(r#"{"width":224,"height":224,"png":""#),
            "{}",
            &wire[..40]
        );
        // Smaller than the raw pixels in base64, however noisy the picture.
        assert!(
            wire.len() < 150_528 * 4 / 3,
            "{} bytes on the wire",
            wire.len()
        );
        let back: CropPixels = serde_json::from_str(&wire).unwrap();
        assert_eq!(back, crop);
    }

    #[test]
    fn a_png_of_another_size_or_kind_is_refused() {
        let crop = CropPixels::new(4, 3, pixels(4, 3)).unwrap();
        let png = BASE64.encode(crop.to_png().unwrap());
        let lying = format!(r#"{{"width":3,"height":4,"png":"{png}"}}"#);
        let err = serde_json::from_str::<CropPixels>(&lying).unwrap_err();
        assert!(err.to_string().contains("4x3"), "{err}");

        let mut gray = Vec::new();
        let mut enc = png::Encoder::new(&mut gray, 4, 3);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0; 12]).unwrap();
        w.finish().unwrap();
        let gray = format!(
            r#"{{"width":4,"height":3,"png":"{}"}}"#,
            BASE64.encode(gray)
        );
        assert!(serde_json::from_str::<CropPixels>(&gray).is_err());

        let truncated = BASE64.encode(&crop.to_png().unwrap()[..20]);
        let truncated = format!(r#"{{"width":4,"height":3,"png":"{truncated}"}}"#);
        assert!(serde_json::from_str::<CropPixels>(&truncated).is_err());
    }

    #[test]
    fn a_crop_names_exactly_one_form_of_its_pixels() {
        for wire in [
            r#"{"width":1,"height":1}"#,
            r#"{"width":1,"height":1,"png":"","rgb":"AAAA"}"#,
        ] {
            let err = serde_json::from_str::<CropPixels>(wire).unwrap_err();
            assert!(err.to_string().contains("exactly one"), "{err}");
        }
    }
}
