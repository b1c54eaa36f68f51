//! A region of a JPEG decoded alone at a DCT scale: libjpeg-turbo's partial
//! decompression (`tj3SetCroppingRegion`), which the `turbojpeg` crate does not wrap, so
//! it goes through that crate's raw bindings here and nowhere else.
//!
//! libjpeg-turbo decodes only the iMCU columns and rows the region touches (it still
//! entropy-decodes the rows above it, but skips their inverse DCT, upsampling and colour
//! conversion), and the pixels inside the region are the ones a whole decode at the same
//! scale gives there: `tests/region_decode.rs` holds them equal, byte for byte.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, c_int};

use image::RgbImage;
use imgfeat_core::CropRect;
use turbojpeg::raw;

use crate::turbo::MAX_SCANS;

thread_local! {
    static HANDLE: RefCell<Option<RegionDecompressor>> = const { RefCell::new(None) };
}

/// A TurboJPEG decompression handle, owned.
struct RegionDecompressor(raw::tjhandle);

impl Drop for RegionDecompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init, is not null, and is destroyed once.
        unsafe { raw::tj3Destroy(self.0) };
    }
}

impl RegionDecompressor {
    fn new() -> Result<Self, String> {
        // SAFETY: tj3Init has no preconditions; a null result is checked before use.
        let ptr = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
        if ptr.is_null() {
            return Err("libjpeg-turbo could not make a decompressor".into());
        }
        let mut handle = Self(ptr);
        handle.set(raw::TJPARAM_TJPARAM_SCANLIMIT, MAX_SCANS as c_int)?;
        Ok(handle)
    }

    fn check(&mut self, rc: c_int) -> Result<(), String> {
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: the handle is live; its message string is copied before the next call.
        let message = unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.0)) };
        Err(message.to_string_lossy().into_owned())
    }

    fn set(&mut self, param: raw::TJPARAM, value: c_int) -> Result<(), String> {
        // SAFETY: the handle is live; tj3Set validates the parameter and value.
        let rc = unsafe { raw::tj3Set(self.0, param as c_int, value) };
        self.check(rc)
    }

    fn get(&mut self, param: raw::TJPARAM) -> c_int {
        // SAFETY: the handle is live; tj3Get only reads it.
        unsafe { raw::tj3Get(self.0, param as c_int) }
    }

    fn decode(
        &mut self,
        bytes: &[u8],
        shrink: u32,
        region: CropRect,
    ) -> Result<(RgbImage, CropRect), String> {
        let len = bytes.len() as raw::size_t;
        // SAFETY: `bytes` is a live slice of `len` bytes; the handle is live.
        let rc = unsafe { raw::tj3DecompressHeader(self.0, bytes.as_ptr(), len) };
        self.check(rc)?;
        let colour = self.get(raw::TJPARAM_TJPARAM_COLORSPACE);
        let known = [
            raw::TJCS_TJCS_YCbCr,
            raw::TJCS_TJCS_RGB,
            raw::TJCS_TJCS_GRAY,
        ];
        if !known.iter().any(|&cs| cs as c_int == colour)
            || self.get(raw::TJPARAM_TJPARAM_LOSSLESS) != 0
        {
            return Err(format!("colour space {colour} or lossless JPEG not cut"));
        }
        // libjpeg-turbo's tjMCUWidth and tjMCUHeight: the iMCU's size, on whose grid a
        // cut's left edge must sit.
        let (mcu_width, mcu_height): (u32, u32) = match self.get(raw::TJPARAM_TJPARAM_SUBSAMP) {
            raw::TJSAMP_TJSAMP_444 | raw::TJSAMP_TJSAMP_GRAY => (8, 8),
            raw::TJSAMP_TJSAMP_422 => (16, 8),
            raw::TJSAMP_TJSAMP_420 => (16, 16),
            raw::TJSAMP_TJSAMP_440 => (8, 16),
            raw::TJSAMP_TJSAMP_411 => (32, 8),
            raw::TJSAMP_TJSAMP_441 => (8, 32),
            other => return Err(format!("subsampling {other} not cut")),
        };
        let scaled = |v: c_int| (v as u32).div_ceil(shrink);
        let (width, height) = (
            scaled(self.get(raw::TJPARAM_TJPARAM_JPEGWIDTH)),
            scaled(self.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT)),
        );
        crate::region::check_region(region, width, height).map_err(|e| e.to_string())?;
        // Subsampled chroma is upsampled from its neighbours ("fancy" upsampling), and
        // at a cut's edges libjpeg-turbo has none, so it would repeat the edge sample
        // where a whole decode blends in the next one. The cut therefore reaches one
        // iMCU beyond the region on every side the image has room (its left edge on the
        // iMCU grid, as libjpeg-turbo requires), and the margin is cut off by the
        // rectangle returned.
        let (step_x, step_y) = (mcu_width.div_ceil(shrink), mcu_height.div_ceil(shrink));
        let x0 = region.x.saturating_sub(step_x);
        let x0 = x0 - x0 % step_x;
        let y0 = region.y.saturating_sub(step_y);
        let right = (region.x + region.width).saturating_add(step_x).min(width);
        let bottom = (region.y + region.height)
            .saturating_add(step_y)
            .min(height);
        let (w, h) = (right - x0, bottom - y0);

        // SAFETY (both): the handle is live and has read this JPEG's header.
        let rc = unsafe {
            raw::tj3SetScalingFactor(
                self.0,
                raw::tjscalingfactor {
                    num: 1,
                    denom: shrink as c_int,
                },
            )
        };
        self.check(rc)?;
        let cut = raw::tjregion {
            x: x0 as c_int,
            y: y0 as c_int,
            w: w as c_int,
            h: h as c_int,
        };
        let rc = unsafe { raw::tj3SetCroppingRegion(self.0, cut) };
        self.check(rc)?;

        let pitch = w as usize * 3;
        let mut pixels = vec![0u8; pitch * h as usize];
        // SAFETY: `pixels` holds `pitch * h` bytes, exactly the cropped RGB output
        // libjpeg-turbo writes for a `w` x `h` region; `bytes` is live for the call.
        let rc = unsafe {
            raw::tj3Decompress8(
                self.0,
                bytes.as_ptr(),
                len,
                pixels.as_mut_ptr(),
                pitch as c_int,
                raw::TJPF_TJPF_RGB,
            )
        };
        let decoded = self.check(rc);
        // The handle is reused by the next image, which may be smaller: no stale region.
        let whole = raw::tjregion {
            x: 0,
            y: 0,
            w: 0,
            h: 0,
        };
        // SAFETY: as above; the all-zero region is TJUNCROPPED.
        unsafe { raw::tj3SetCroppingRegion(self.0, whole) };
        decoded?;
        let image = RgbImage::from_raw(w, h, pixels).ok_or("region buffer size")?;
        let inside = CropRect {
            x: region.x - x0,
            y: region.y - y0,
            width: region.width,
            height: region.height,
        };
        Ok((image, inside))
    }
}

/// `region` (in the pixels of the JPEG decoded at 1/`shrink`) decoded alone, with a
/// margin, and the rectangle in the returned pixels that is `region`. `Err` with
/// libjpeg-turbo's reason when it cannot: the caller decodes the whole image at that
/// scale instead.
pub(crate) fn decode_region(
    bytes: &[u8],
    shrink: u32,
    region: CropRect,
) -> Result<(RgbImage, CropRect), String> {
    if !matches!(shrink, 1 | 2 | 4 | 8) {
        return Err(format!("scale 1/{shrink}"));
    }
    HANDLE.with_borrow_mut(|slot| {
        let handle = match slot.as_mut() {
            Some(h) => h,
            None => slot.insert(RegionDecompressor::new()?),
        };
        handle.decode(bytes, shrink, region)
    })
}
