//! Decoding probe photos with limits, and the two resamplers the pipeline needs.

use std::io::Cursor;

use image::{ImageDecoder, ImageReader, Limits};

use crate::error::{EngineError, Result};

/// Largest accepted encoded image, bytes.
pub const MAX_BYTES: usize = 25 * 1024 * 1024;
/// Largest accepted side, pixels (checked from the header, before decoding).
pub const MAX_SIDE: u32 = 8192;
/// Smallest accepted side, pixels.
pub const MIN_SIDE: u32 = 32;

/// An 8-bit BGR image (OpenCV order, what YuNet expects), row-major, 3 bytes per pixel.
#[derive(Clone)]
pub struct Bgr {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height * width * 3` bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Bgr {
    // never dump pixels (personal data) into logs
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bgr({}x{})", self.width, self.height)
    }
}

impl Bgr {
    /// A black image.
    pub fn zeros(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0; width * height * 3] }
    }

    /// Pixel channel `c` at (x, y).
    #[inline]
    pub fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * 3 + c]
    }

    /// The image as a `1×3×ph×pw` planar f32 tensor, `(v - mean) * scale` per value,
    /// channels in BGR order or swapped to RGB, zero-padded right and bottom. One pass
    /// over rows (not per-element ndarray indexing: that was a visible share of detection).
    pub fn to_planar(&self, pw: usize, ph: usize, rgb: bool, mean: f32, scale: f32) -> ndarray::Array4<f32> {
        debug_assert!(pw >= self.width && ph >= self.height);
        let plane = pw * ph;
        let mut out = vec![0f32; 3 * plane];
        let (planes, _) = out.split_at_mut(3 * plane);
        let (p0, rest) = planes.split_at_mut(plane);
        let (p1, p2) = rest.split_at_mut(plane);
        let dst: [&mut [f32]; 3] = if rgb { [p2, p1, p0] } else { [p0, p1, p2] };
        let [d0, d1, d2] = dst;
        for y in 0..self.height {
            let row = &self.data[y * self.width * 3..(y + 1) * self.width * 3];
            let o = y * pw;
            for (x, px) in row.chunks_exact(3).enumerate() {
                d0[o + x] = (px[0] as f32 - mean) * scale;
                d1[o + x] = (px[1] as f32 - mean) * scale;
                d2[o + x] = (px[2] as f32 - mean) * scale;
            }
        }
        ndarray::Array4::from_shape_vec((1, 3, ph, pw), out).expect("shape matches length")
    }

    /// A copy with a black border of `b` pixels on every side.
    pub fn with_border(&self, b: usize) -> Self {
        let mut out = Self::zeros(self.width + 2 * b, self.height + 2 * b);
        for y in 0..self.height {
            let src = &self.data[y * self.width * 3..(y + 1) * self.width * 3];
            let off = ((y + b) * out.width + b) * 3;
            out.data[off..off + src.len()].copy_from_slice(src);
        }
        out
    }

    /// Resize with OpenCV `INTER_LINEAR` semantics (half-pixel centres, no antialiasing),
    /// so detections match the reference pipeline.
    pub fn resize_linear(&self, nw: usize, nh: usize) -> Self {
        let mut out = Self::zeros(nw, nh);
        let (sx, sy) = (self.width as f32 / nw as f32, self.height as f32 / nh as f32);
        let taps = |dst: usize, scale: f32, n: usize| {
            let f = ((dst as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (f.floor() as usize).min(n - 1);
            let i1 = (i0 + 1).min(n - 1);
            (i0, i1, f - i0 as f32)
        };
        let xs: Vec<_> = (0..nw).map(|x| taps(x, sx, self.width)).collect();
        for y in 0..nh {
            let (y0, y1, fy) = taps(y, sy, self.height);
            for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let top = self.at(x0, y0, c) as f32 * (1.0 - fx) + self.at(x1, y0, c) as f32 * fx;
                    let bot = self.at(x0, y1, c) as f32 * (1.0 - fx) + self.at(x1, y1, c) as f32 * fx;
                    out.data[(y * nw + x) * 3 + c] = (top * (1.0 - fy) + bot * fy).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }
}

/// Decodes JPEG, PNG, BMP, TIFF or PGM bytes into BGR, applying EXIF orientation like
/// OpenCV's `imread`. Checks size and dimensions from the header before decoding, so a
/// 20000×20000 image is refused without allocating it. Error messages never include
/// the image content.
pub fn decode(bytes: &[u8]) -> Result<Bgr> {
    if bytes.is_empty() {
        return Err(EngineError::BadInput("empty image".into()));
    }
    if bytes.len() > MAX_BYTES {
        return Err(EngineError::BadInput(format!("image is {} bytes; the limit is {MAX_BYTES}", bytes.len())));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| EngineError::BadInput(format!("cannot read image: {e}")))?;
    match reader.format() {
        None => return Err(EngineError::BadInput("not an image (supported: JPEG, PNG, BMP, TIFF, PGM, WebP)".into())),
        // the JPEG decoder fills a cut-off scan with grey and reports success: we refuse
        // instead of enrolling half a face
        Some(image::ImageFormat::Jpeg) if !jpeg_has_end(bytes) => {
            return Err(EngineError::BadInput(
                "corrupt or truncated image: JPEG data ends before its end marker".into(),
            ));
        }
        _ => {}
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| bad_decode(&e))?;
    let (w, h) = decoder.dimensions();
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(EngineError::BadInput(format!("image is {w}x{h}; at least {MIN_SIDE}x{MIN_SIDE} is needed")));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| bad_decode(&e))?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    let mut data = rgb.into_raw();
    for px in data.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
    Ok(Bgr { width, height, data })
}

/// True when an end-of-image marker follows the last start-of-scan marker. Inside the
/// entropy-coded data every 0xFF byte is stuffed (FF 00) and only FF D0..D7 restart markers
/// occur, so FF DA / FF D9 there are real markers.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

fn bad_decode(e: &image::ImageError) -> EngineError {
    match e {
        image::ImageError::Limits(_) => {
            EngineError::BadInput(format!("image dimensions exceed the limit of {MAX_SIDE}x{MAX_SIDE}"))
        }
        image::ImageError::Unsupported(_) => EngineError::BadInput("unsupported image format".into()),
        _ => EngineError::BadInput(format!("corrupt or truncated image: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_linear_preserves_constant_and_halves_a_ramp() {
        let mut img = Bgr::zeros(4, 2);
        for x in 0..4 {
            for y in 0..2 {
                for c in 0..3 {
                    img.data[(y * 4 + x) * 3 + c] = (x * 10) as u8;
                }
            }
        }
        let r = img.resize_linear(2, 1);
        // OpenCV: dst x=0 samples src 0.5 → 5, x=1 samples 2.5 → 25
        assert_eq!((r.at(0, 0, 0), r.at(1, 0, 2)), (5, 25));
    }

    #[test]
    fn bad_bytes_are_clear_errors() {
        for (bytes, want) in [
            (&b""[..], "empty"),
            (&b"hello, this is a text file"[..], "not an image"),
            (&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F'][..], "corrupt"),
        ] {
            let e = decode(bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn to_planar_matches_per_element_layout_with_padding_and_channel_swap() {
        let (w, h) = (5, 3);
        let img = Bgr { width: w, height: h, data: (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect() };
        for rgb in [false, true] {
            let t = img.to_planar(8, 4, rgb, 127.0, 0.5);
            assert_eq!(t.shape(), &[1, 3, 4, 8]);
            for c in 0..3 {
                for y in 0..4 {
                    for x in 0..8 {
                        let want = if x < w && y < h {
                            let src = if rgb { 2 - c } else { c };
                            (img.at(x, y, src) as f32 - 127.0) * 0.5
                        } else {
                            0.0
                        };
                        assert_eq!(t[[0, c, y, x]], want, "c{c} y{y} x{x} rgb={rgb}");
                    }
                }
            }
        }
    }

    #[test]
    fn truncated_jpeg_is_refused_and_a_whole_one_decodes() {
        let mut buf = std::io::Cursor::new(Vec::new());
        ::image::RgbImage::from_fn(64, 64, |x, y| ::image::Rgb([x as u8 * 4, y as u8 * 4, 7]))
            .write_to(&mut buf, ::image::ImageFormat::Jpeg)
            .unwrap();
        let whole = buf.into_inner();
        assert!(decode(&whole).is_ok());
        let e = decode(&whole[..whole.len() * 2 / 3]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn webp_decodes() {
        let mut buf = std::io::Cursor::new(Vec::new());
        ::image::RgbImage::from_pixel(40, 40, ::image::Rgb([10, 20, 30]))
            .write_to(&mut buf, ::image::ImageFormat::WebP)
            .unwrap();
        let img = decode(buf.get_ref()).unwrap();
        assert_eq!((img.width, img.height, img.at(0, 0, 0), img.at(0, 0, 2)), (40, 40, 30, 10));
    }
}
