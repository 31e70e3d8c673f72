//! LEADER's full-resolution stem, computed in one cache-resident pass.
//!
//! The network's first layers run at the input's full resolution with few channels: two
//! branches, each a 5x5 convolution and a 5x5 convolution at dilation 2 of the grey image
//! (zero 'same' padding), concatenated, a channel LayerNorm, a tanh-GELU, then a 2x2 max
//! pool (`stem_max`, 16 channels) or average pool (`stem_avg`, 32 channels). ONNX Runtime
//! runs that as ~10 memory-bound passes over 20–40 MB tensors with layout reorders between
//! them; here every 8-pixel strip of two image rows goes through convolution, LayerNorm,
//! GELU and pooling in registers and only the half-resolution result is written.
//! `models/leader_trunk.py` cuts the stem from the ONNX graph and stores its parameters in
//! the trunk model's metadata ([`METADATA_KEY`]); the trunk takes this module's output.
//!
//! The arithmetic is ONNX Runtime 1.31's, operation for operation (on AVX2 + FMA, where
//! its MLAS kernels run): convolution sums from zero by fused multiply-adds in tap order
//! and adds the bias last; LayerNorm takes the mean from a 4-lane f64 sum and the variance
//! from an 8-lane f32 sum of squared deviations, reduced in MLAS' lane order; FastGelu is
//! `x·(C·x·x + B)`, then MLAS' rational tanh by FMA, then `0.5·x·(t + 1)`; the average pool
//! sums row by row. So the stem's output equals ORT's bit for bit, and the int8 trunk
//! (whose quantization would turn the smallest difference into a flipped integer now and
//! then) gives exactly the minutiae of the whole ORT graph; `engine/tests/finger_leader.rs`
//! checks the equality on FVC images with the float network.
//! A change to this arithmetic changes extraction output: bump `eval::CACHE_VERSION`
//! (template caches are keyed by the model file's sha256, which would not change).

#[cfg(target_arch = "x86_64")]
mod avx2;

use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{EngineError, Result};
use crate::vector::{Isa, Level};

/// Metadata key of the stem parameters in a trunk model.
pub const METADATA_KEY: &str = "epatrol.leader_stem";
/// The metadata's `format` this module reads.
const FORMAT: &str = "epatrol-leader-stem-1";
/// Zero padding around the image: the dilated 5x5 convolution reaches 4 pixels out.
const PAD: usize = 4;
/// Pixels per strip (one AVX2 vector of f32); image widths are multiples of it.
pub const STRIP: usize = 8;
/// Taps of a 5x5 kernel.
const TAPS: usize = 25;
/// Most channels a branch may have (the strip buffers are sized for it).
const MAX_CHANNELS: usize = 32;
/// Channels convolved together: independent accumulators hide the multiply-add latency
/// and share each input load (8 of them plus the input and a weight fit AVX2's 16 registers).
const GROUP: usize = 8;

// The tanh of ONNX Runtime's FastGelu (MLAS, after Eigen): x·p(x²)/q(x²) on [-9, 9].
const TANH_CLAMP: f32 = 9.0;
const TANH_ALPHA: [f32; 7] =
    [-2.760_768_4e-16, 2.000_188e-13, -8.604_672e-11, 5.122_297_3e-8, 1.485_722_35e-5, 6.372_619_5e-4, 4.893_524_6e-3];
const TANH_BETA: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_7e-3, 4.893_525e-3];
/// FastGelu's constants: √(2/π) and 0.044715·√(2/π).
const GELU_B: f32 = 0.797_884_6;
const GELU_C: f32 = 0.035_677_407;

#[derive(Deserialize)]
struct Meta {
    format: String,
    branches: Vec<BranchMeta>,
}

#[derive(Deserialize)]
struct BranchMeta {
    input: String,
    pool: Pool,
    epsilon: f32,
    conv: ConvMeta,
    dilated: ConvMeta,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

#[derive(Deserialize)]
struct ConvMeta {
    weight: Vec<f32>,
    bias: Vec<f32>,
    dilation: usize,
}

/// The 2x2 pooling that ends a branch.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// Maximum of the window.
    Max,
    /// Mean of the window.
    Avg,
}

/// One stem branch: its channels in groups of [`GROUP`] (the plain convolution's, then the
/// dilated one's), LayerNorm parameters and pooling.
struct Branch {
    input: String,
    pool: Pool,
    epsilon: f32,
    groups: Vec<Group>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// [`GROUP`] output channels of one convolution, weights tap-major.
struct Group {
    weights: [[f32; GROUP]; TAPS],
    bias: [f32; GROUP],
    dilation: usize,
}

impl Branch {
    fn channels(&self) -> usize {
        self.groups.len() * GROUP
    }
}

/// The stem of a LEADER trunk model, ready to run.
pub struct Stem {
    branches: Vec<Branch>,
}

fn bad(msg: String) -> EngineError {
    EngineError::Inference(format!("LEADER stem metadata: {msg}"))
}

impl Stem {
    /// Parses the JSON that `models/leader_trunk.py` stores under [`METADATA_KEY`].
    pub fn from_metadata(json: &str) -> Result<Stem> {
        let meta: Meta = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if meta.format != FORMAT {
            return Err(bad(format!("format {:?}, this build reads {FORMAT:?}", meta.format)));
        }
        if meta.branches.is_empty() {
            return Err(bad("no branches".into()));
        }
        let branches = meta.branches.into_iter().map(Branch::new).collect::<Result<_>>()?;
        Ok(Stem { branches })
    }

    /// The trunk inputs the stem feeds and their channel counts.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, usize)> {
        self.branches.iter().map(|b| (b.input.as_str(), b.channels()))
    }

    /// Runs the stem on a `height` x `width` grey image (row-major; both sides even and the
    /// width a multiple of [`STRIP`]) with the best SIMD level of this CPU. Returns one
    /// `[C, height/2, width/2]` tensor per branch, in [`Stem::outputs`] order. `parallel`
    /// spreads the rows over rayon's pool.
    pub fn run(&self, img: &[f32], width: usize, height: usize, parallel: bool) -> Result<Vec<Vec<f32>>> {
        self.run_with(Isa::best(), img, width, height, parallel)
    }

    /// [`Stem::run`] with a given SIMD level (the tests compare levels).
    pub fn run_with(
        &self,
        isa: Isa,
        img: &[f32],
        width: usize,
        height: usize,
        parallel: bool,
    ) -> Result<Vec<Vec<f32>>> {
        if width == 0
            || height == 0
            || !width.is_multiple_of(STRIP)
            || !height.is_multiple_of(2)
            || img.len() != width * height
        {
            return Err(EngineError::Invalid(format!(
                "stem input {width}x{height} ({} values): sides must be even, the width a multiple of {STRIP}",
                img.len()
            )));
        }
        // zero 'same' padding, as the ONNX convolutions
        let stride = width + 2 * PAD;
        let mut padded = vec![0f32; stride * (height + 2 * PAD)];
        for (y, row) in img.chunks_exact(width).enumerate() {
            padded[(y + PAD) * stride + PAD..][..width].copy_from_slice(row);
        }
        let (hw, hh) = (width / 2, height / 2);
        let mut outs: Vec<Vec<f32>> = self.branches.iter().map(|b| vec![0f32; b.channels() * hh * hw]).collect();
        // rows[oy][branch][channel]: the output row slices one pair of image rows writes
        let mut rows: Vec<Vec<Vec<&mut [f32]>>> =
            (0..hh).map(|_| self.branches.iter().map(|b| Vec::with_capacity(b.channels())).collect()).collect();
        for (bi, out) in outs.iter_mut().enumerate() {
            for plane in out.chunks_exact_mut(hh * hw) {
                for (oy, row) in plane.chunks_exact_mut(hw).enumerate() {
                    rows[oy][bi].push(row);
                }
            }
        }
        let job = |(oy, mut r): (usize, Vec<Vec<&mut [f32]>>)| self.row_pair(isa, &padded, stride, oy, &mut r);
        if parallel {
            rows.into_par_iter().enumerate().for_each(job);
        } else {
            rows.into_iter().enumerate().for_each(job);
        }
        Ok(outs)
    }

    /// Output row `oy` of every branch (image rows 2·oy and 2·oy + 1).
    fn row_pair(&self, isa: Isa, padded: &[f32], stride: usize, oy: usize, out: &mut [Vec<&mut [f32]>]) {
        #[cfg(target_arch = "x86_64")]
        if isa.level() >= Level::Avx2 && isa.level() != Level::Neon {
            // SAFETY: an `Isa` of at least Avx2 is only constructed after runtime detection
            // of avx2+fma.
            unsafe { avx2::row_pair(&self.branches, padded, stride, oy, out) };
            return;
        }
        let _ = isa;
        self.row_pair_portable(padded, stride, oy, out);
    }

    /// The portable kernel (the reference the SIMD one is tested against).
    fn row_pair_portable(&self, padded: &[f32], stride: usize, oy: usize, out: &mut [Vec<&mut [f32]>]) {
        let width = stride - 2 * PAD;
        let mut strip = [[[0f32; STRIP]; MAX_CHANNELS]; 2];
        for x0 in (0..width).step_by(STRIP) {
            for (b, rows) in self.branches.iter().zip(out.iter_mut()) {
                let n = b.channels();
                for (r, s) in strip.iter_mut().enumerate() {
                    let s = &mut s[..n];
                    for (g, acc) in b.groups.iter().zip(s.chunks_exact_mut(GROUP)) {
                        let acc: &mut [[f32; STRIP]; GROUP] = acc.try_into().expect("group");
                        let y = 2 * oy + r;
                        conv_group(padded, stride, y, x0, g, acc);
                    }
                    norm_gelu(s, &b.gamma, &b.beta, b.epsilon);
                }
                for (c, row) in rows.iter_mut().enumerate() {
                    let (top, bottom) = (&strip[0][c], &strip[1][c]);
                    for (k, o) in row[x0 / 2..][..STRIP / 2].iter_mut().enumerate() {
                        let (a, b_, c_, d) = (top[2 * k], top[2 * k + 1], bottom[2 * k], bottom[2 * k + 1]);
                        *o = match b.pool {
                            Pool::Max => a.max(b_).max(c_.max(d)),
                            // ONNX Runtime's order: row by row, then divide by the window
                            Pool::Avg => (((a + b_) + c_) + d) / 4.0,
                        };
                    }
                }
            }
        }
    }
}

impl Branch {
    fn new(m: BranchMeta) -> Result<Branch> {
        let c = m.conv.bias.len();
        let n = 2 * c;
        if c == 0
            || !c.is_multiple_of(GROUP)
            || n > MAX_CHANNELS
            || m.dilated.bias.len() != c
            || m.gamma.len() != n
            || m.beta.len() != n
        {
            return Err(bad(format!(
                "branch {}: {} + {} channels, {} / {} LayerNorm parameters (equal halves, multiples of {GROUP}, at most \
                 {MAX_CHANNELS} in all)",
                m.input,
                c,
                m.dilated.bias.len(),
                m.gamma.len(),
                m.beta.len()
            )));
        }
        let all = [&m.conv.weight, &m.conv.bias, &m.dilated.weight, &m.dilated.bias, &m.gamma, &m.beta];
        if !(m.epsilon > 0.0 && all.iter().all(|v| v.iter().all(|x| x.is_finite()))) {
            return Err(bad(format!("branch {}: non-finite parameters or epsilon {}", m.input, m.epsilon)));
        }
        let mut groups = Vec::with_capacity(n / GROUP);
        for conv in [&m.conv, &m.dilated] {
            if conv.weight.len() != c * TAPS || !(1..=2).contains(&conv.dilation) {
                return Err(bad(format!(
                    "branch {}: {} weights for {c} channels, dilation {} (5x5 kernels, dilation 1 or 2)",
                    m.input,
                    conv.weight.len(),
                    conv.dilation
                )));
            }
            // [C, 5, 5] channel-major in the metadata → tap-major per group
            for g in 0..c / GROUP {
                let ch = |k: usize| g * GROUP + k;
                groups.push(Group {
                    weights: std::array::from_fn(|t| std::array::from_fn(|k| conv.weight[ch(k) * TAPS + t])),
                    bias: std::array::from_fn(|k| conv.bias[ch(k)]),
                    dilation: conv.dilation,
                });
            }
        }
        Ok(Branch { input: m.input, pool: m.pool, epsilon: m.epsilon, groups, gamma: m.gamma, beta: m.beta })
    }
}

/// A group's channels of a 5x5 convolution over the strip of [`STRIP`] pixels starting at
/// column `x0` of image row `y` (coordinates without the padding).
fn conv_group(padded: &[f32], stride: usize, y: usize, x0: usize, g: &Group, acc: &mut [[f32; STRIP]; GROUP]) {
    *acc = [[0.0; STRIP]; GROUP];
    let d = g.dilation;
    let base = (y + PAD - 2 * d) * stride + x0 + PAD - 2 * d;
    let window = &padded[base..base + 4 * d * stride + 4 * d + STRIP];
    for ky in 0..5 {
        for kx in 0..5 {
            let off = ky * d * stride + kx * d;
            let src: &[f32; STRIP] = window[off..off + STRIP].try_into().expect("strip");
            let w = &g.weights[ky * 5 + kx];
            for (a, &wk) in acc.iter_mut().zip(w) {
                for (a, &s) in a.iter_mut().zip(src) {
                    *a = wk.mul_add(s, *a);
                }
            }
        }
    }
    for (a, &b) in acc.iter_mut().zip(&g.bias) {
        a.iter_mut().for_each(|v| *v += b);
    }
}

/// LayerNorm over the channels of each pixel of the strip, then the tanh-GELU, in place
/// (the channel count is a multiple of 8, as MLAS' vector loops need no tail then).
fn norm_gelu(strip: &mut [[f32; STRIP]], gamma: &[f32], beta: &[f32], epsilon: f32) {
    let n = strip.len();
    for l in 0..STRIP {
        // mean: four f64 lanes over channels c ≡ j (mod 4), then (s0 + s2) + (s1 + s3)
        let mut s = [0f64; 4];
        for (c, ch) in strip.iter().enumerate() {
            s[c % 4] += ch[l] as f64;
        }
        let mean = (((s[0] + s[2]) + (s[1] + s[3])) / n as f64) as f32;
        // variance: eight f32 lanes of fused squares, reduced as MLAS' horizontal add
        let mut v = [0f32; 8];
        for (c, ch) in strip.iter().enumerate() {
            let d = ch[l] - mean;
            v[c % 8] = d.mul_add(d, v[c % 8]);
        }
        let var = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
        let inv = 1.0 / (var / n as f32 + epsilon).sqrt();
        for ((ch, &g), &b) in strip.iter_mut().zip(gamma).zip(beta) {
            ch[l] = gelu(((ch[l] - mean) * inv).mul_add(g, b));
        }
    }
}

/// The tanh approximation of GELU (Keras `approximate=True`), as ONNX Runtime's FastGelu
/// computes it.
pub fn gelu(x: f32) -> f32 {
    let u = x * ((GELU_C * x) * x + GELU_B);
    (0.5 * x) * (tanh(u) + 1.0)
}

/// MLAS' tanh: a rational function on [-9, 9] evaluated by fused multiply-adds.
fn tanh(x: f32) -> f32 {
    let x = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let x2 = x * x;
    let p = TANH_ALPHA[1..].iter().fold(TANH_ALPHA[0], |p, &a| p.mul_add(x2, a)) * x;
    let q = TANH_BETA[1..].iter().fold(TANH_BETA[0], |q, &b| q.mul_add(x2, b));
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stem with pseudo-random parameters shaped like LEADER's (8 + 8 and 16 + 16 channels).
    fn stem() -> Stem {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |scale: f32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
        };
        let mut branch = |name: &str, pool: &str, c: usize| {
            let mut conv = |d: usize| {
                serde_json::json!({"weight": (0..c * TAPS).map(|_| rnd(0.02)).collect::<Vec<_>>(),
                                   "bias": (0..c).map(|_| rnd(1.0)).collect::<Vec<_>>(), "dilation": d})
            };
            let (a, b) = (conv(1), conv(2));
            serde_json::json!({"input": name, "pool": pool, "epsilon": 1e-3, "conv": a, "dilated": b,
                               "gamma": (0..2 * c).map(|_| 1.0 + rnd(0.5)).collect::<Vec<_>>(),
                               "beta": (0..2 * c).map(|_| rnd(0.5)).collect::<Vec<_>>()})
        };
        let meta = serde_json::json!({"format": FORMAT, "branches": [branch("stem_max", "max", 8), branch("stem_avg", "avg", 16)]});
        Stem::from_metadata(&meta.to_string()).unwrap()
    }

    fn image(w: usize, h: usize) -> Vec<f32> {
        (0..w * h).map(|i| ((i * 7919 % 251) as f32 + (i % w) as f32 * 0.3) % 256.0).collect()
    }

    /// The definition, in f64 with the exact tanh, one pixel at a time.
    fn reference(s: &Stem, img: &[f32], w: usize, h: usize) -> Vec<Vec<f64>> {
        let px = |y: isize, x: isize| {
            if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                0.0
            } else {
                img[y as usize * w + x as usize] as f64
            }
        };
        let act = |b: &Branch, y: usize, x: usize| -> Vec<f64> {
            let v: Vec<f64> = (0..b.channels())
                .map(|c| {
                    let g = &b.groups[c / GROUP];
                    let d = g.dilation as isize;
                    let mut a = g.bias[c % GROUP] as f64;
                    for t in 0..TAPS {
                        let (ky, kx) = ((t / 5) as isize - 2, (t % 5) as isize - 2);
                        a += g.weights[t][c % GROUP] as f64 * px(y as isize + ky * d, x as isize + kx * d);
                    }
                    a
                })
                .collect();
            let n = v.len() as f64;
            let m = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n;
            v.iter()
                .enumerate()
                .map(|(c, a)| {
                    let x = (a - m) / (var + b.epsilon as f64).sqrt() * b.gamma[c] as f64 + b.beta[c] as f64;
                    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
                })
                .collect()
        };
        s.branches
            .iter()
            .map(|b| {
                let (hw, hh) = (w / 2, h / 2);
                let mut out = vec![0.0; b.channels() * hh * hw];
                for oy in 0..hh {
                    for ox in 0..hw {
                        let win: Vec<Vec<f64>> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                            .iter()
                            .map(|(dy, dx)| act(b, 2 * oy + dy, 2 * ox + dx))
                            .collect();
                        for c in 0..b.channels() {
                            let vals = win.iter().map(|v| v[c]);
                            out[(c * hh + oy) * hw + ox] = match b.pool {
                                Pool::Max => vals.fold(f64::MIN, f64::max),
                                Pool::Avg => vals.sum::<f64>() / 4.0,
                            };
                        }
                    }
                }
                out
            })
            .collect()
    }

    #[test]
    fn every_simd_level_computes_the_definition_with_the_same_bits() {
        let (w, h) = (40, 14);
        let (s, img) = (stem(), image(w, h));
        let want = reference(&s, &img, w, h);
        let portable = s.run_with(Isa::scalar(), &img, w, h, false).unwrap();
        for (g, r) in portable.iter().zip(&want) {
            assert_eq!(g.len(), r.len());
            let err = g.iter().zip(r).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4, "max error {err}");
        }
        // every SIMD level does the same operations in the same order: the same bits
        for isa in Isa::available() {
            for parallel in [false, true] {
                let got = s.run_with(isa, &img, w, h, parallel).unwrap();
                assert!(got == portable, "{} parallel={parallel}", isa.name());
            }
        }
    }

    #[test]
    fn tanh_is_within_a_few_ulp_and_saturates() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            assert!((tanh(x) - x.tanh()).abs() <= 4.0 * f32::EPSILON, "{x}: {} vs {}", tanh(x), x.tanh());
        }
        assert_eq!(tanh(1e30), tanh(9.0));
        assert!((tanh(9.0) - 1.0).abs() < 1e-6 && tanh(f32::NEG_INFINITY) == -tanh(9.0));
    }

    #[test]
    fn bad_sizes_and_metadata_are_errors() {
        let s = stem();
        assert!(s.run(&image(12, 4), 12, 4, false).is_err(), "width not a multiple of the strip");
        assert!(s.run(&image(16, 3), 16, 3, false).is_err(), "odd height");
        assert!(s.run(&image(16, 4), 16, 2, false).is_err(), "length mismatch");
        for bad in
            ["", "{}", r#"{"format":"other","branches":[]}"#, r#"{"format":"epatrol-leader-stem-1","branches":[]}"#]
        {
            assert!(Stem::from_metadata(bad).is_err(), "{bad}");
        }
    }
}
