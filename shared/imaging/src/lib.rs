//! Pixels in and out of the pipeline: decode untrusted bytes to RGB8 under limits,
//! resize a region to a model's input tensor exactly like the Python reference (Pillow
//! bilinear), crop the main object and encode it as JPEG.

mod crop;
mod decode;
mod encode;
mod error;
mod region;
mod region_decode;
mod resize;
mod shrink;
mod turbo;
mod turbo_region;

pub use crop::crop;
pub use decode::{DecodeLimits, decode_image, decode_rgb};
pub use encode::{LosslessCrop, crop_jpeg_lossless, encode_jpeg, encode_jpeg_region};
pub use error::ImagingError;
pub use image::RgbImage;
pub use region_decode::{RegionPixels, decode_covering};
pub use resize::{resize_rgb, resize_to_tensor, rgb_to_tensor};
pub use shrink::Decoded;
