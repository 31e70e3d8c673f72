//! WSQ (FBI Wavelet Scalar Quantization) decoding.

use crate::error::{EngineError, Result};
use crate::finger::image::GrayImage;

/// Decodes a WSQ file. Not implemented yet: returns `Unsupported`.
pub fn decode(_bytes: &[u8]) -> Result<GrayImage> {
    Err(EngineError::Unsupported("WSQ decoding is not implemented yet".into()))
}
