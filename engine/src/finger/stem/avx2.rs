//! The stem kernel in AVX2 + FMA intrinsics: the 8 channels of a group accumulate in
//! registers (LLVM's auto-vectorizer spilled them and shuffled inputs, ~4x slower), and
//! LayerNorm, GELU and pooling work on whole 8-pixel vectors. Tested against the portable
//! kernel and the f64 definition in `super::tests`.

use std::arch::x86_64::*;

use super::{Branch, GROUP, Group, MAX_CHANNELS, PAD, Pool, STRIP, TANH_ALPHA, TANH_BETA, TANH_CLAMP, TAPS};
use super::{GELU_B, GELU_C};

/// Output row `oy` of every branch (image rows 2·oy and 2·oy + 1); see `Stem::row_pair`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_pair(
    branches: &[Branch],
    padded: &[f32],
    stride: usize,
    oy: usize,
    out: &mut [Vec<&mut [f32]>],
) {
    let width = stride - 2 * PAD;
    let mut strip = [[_mm256_setzero_ps(); MAX_CHANNELS]; 2];
    for x0 in (0..width).step_by(STRIP) {
        for (b, rows) in branches.iter().zip(out.iter_mut()) {
            let n = b.channels();
            for (r, s) in strip.iter_mut().enumerate() {
                let y = 2 * oy + r;
                for (g, acc) in b.groups.iter().zip(s[..n].chunks_exact_mut(GROUP)) {
                    let acc: &mut [__m256; GROUP] = acc.try_into().expect("group");
                    // SAFETY (both calls): avx2+fma are enabled on this function.
                    *acc = match g.dilation {
                        1 => conv_group::<1>(padded, stride, y, x0, g),
                        _ => conv_group::<2>(padded, stride, y, x0, g),
                    };
                }
                norm_gelu(&mut s[..n], &b.gamma, &b.beta, b.epsilon);
            }
            for (c, row) in rows.iter_mut().enumerate() {
                let (top, bottom) = (strip[0][c], strip[1][c]);
                // lanes 2k and 2k+1 swapped: pairs of neighbours line up
                let (top_sw, bottom_sw) =
                    (_mm256_shuffle_ps(top, top, 0b10_11_00_01), _mm256_shuffle_ps(bottom, bottom, 0b10_11_00_01));
                let v = match b.pool {
                    Pool::Max => _mm256_max_ps(_mm256_max_ps(top, top_sw), _mm256_max_ps(bottom, bottom_sw)),
                    // ONNX Runtime's order, ((a + b) + c) + d, then / 4 (exact as × 0.25)
                    Pool::Avg => _mm256_mul_ps(
                        _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(top, top_sw), bottom), bottom_sw),
                        _mm256_set1_ps(0.25),
                    ),
                };
                // the even lanes hold the 4 outputs
                let packed = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
                let dst: &mut [f32; STRIP / 2] = (&mut row[x0 / 2..x0 / 2 + STRIP / 2]).try_into().expect("4 outputs");
                // SAFETY: `dst` is 4 writable f32.
                unsafe { _mm_storeu_ps(dst.as_mut_ptr(), _mm256_castps256_ps128(packed)) };
            }
        }
    }
}

/// A group's 8 channels of a 5x5 convolution at dilation `D` over the strip of 8 pixels at
/// column `x0` of image row `y` (coordinates without the padding).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn conv_group<const D: usize>(padded: &[f32], stride: usize, y: usize, x0: usize, g: &Group) -> [__m256; GROUP] {
    let base = (y + PAD - 2 * D) * stride + x0 + PAD - 2 * D;
    // every tap of the 5x5 window; indexing panics here, once, if the strip leaves the image
    let window = &padded[base..base + 4 * D * stride + 4 * D + STRIP];
    let mut acc = [_mm256_setzero_ps(); GROUP];
    for t in 0..TAPS {
        let off = (t / 5) * D * stride + (t % 5) * D;
        // SAFETY: off + STRIP <= window.len() (off ≤ 4·D·stride + 4·D).
        let src = unsafe { _mm256_loadu_ps(window.as_ptr().add(off)) };
        for (a, &w) in acc.iter_mut().zip(&g.weights[t]) {
            *a = _mm256_fmadd_ps(_mm256_set1_ps(w), src, *a);
        }
    }
    // MLAS adds the bias after the sum
    for (a, &b) in acc.iter_mut().zip(&g.bias) {
        *a = _mm256_add_ps(*a, _mm256_set1_ps(b));
    }
    acc
}

/// `super::norm_gelu` on 8 pixels at a time (the same operations in the same order).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn norm_gelu(v: &mut [__m256], gamma: &[f32], beta: &[f32], epsilon: f32) {
    let mut lo = [_mm256_setzero_pd(); 4];
    let mut hi = [_mm256_setzero_pd(); 4];
    for (c, &x) in v.iter().enumerate() {
        lo[c % 4] = _mm256_add_pd(lo[c % 4], _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        hi[c % 4] = _mm256_add_pd(hi[c % 4], _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
    }
    let n = _mm256_set1_pd(v.len() as f64);
    let mean_of = |s: [__m256d; 4]| {
        _mm256_cvtpd_ps(_mm256_div_pd(_mm256_add_pd(_mm256_add_pd(s[0], s[2]), _mm256_add_pd(s[1], s[3])), n))
    };
    let mean = _mm256_set_m128(mean_of(hi), mean_of(lo));
    let mut sq = [_mm256_setzero_ps(); 8];
    for (c, &x) in v.iter().enumerate() {
        let d = _mm256_sub_ps(x, mean);
        sq[c % 8] = _mm256_fmadd_ps(d, d, sq[c % 8]);
    }
    let var = _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(sq[0], sq[4]), _mm256_add_ps(sq[2], sq[6])),
        _mm256_add_ps(_mm256_add_ps(sq[1], sq[5]), _mm256_add_ps(sq[3], sq[7])),
    );
    let var_n = _mm256_div_ps(var, _mm256_set1_ps(v.len() as f32));
    let inv = _mm256_div_ps(_mm256_set1_ps(1.0), _mm256_sqrt_ps(_mm256_add_ps(var_n, _mm256_set1_ps(epsilon))));
    for ((x, &g), &b) in v.iter_mut().zip(gamma).zip(beta) {
        let y = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(*x, mean), inv), _mm256_set1_ps(g), _mm256_set1_ps(b));
        *x = gelu(y);
    }
}

/// `super::gelu` on 8 lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn gelu(x: __m256) -> __m256 {
    let inner = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_C), x), x), _mm256_set1_ps(GELU_B));
    let t = tanh(_mm256_mul_ps(x, inner));
    _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), x), _mm256_add_ps(t, _mm256_set1_ps(1.0)))
}

/// `super::tanh` on 8 lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tanh(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-TANH_CLAMP)), _mm256_set1_ps(TANH_CLAMP));
    let x2 = _mm256_mul_ps(x, x);
    let p =
        TANH_ALPHA[1..].iter().fold(_mm256_set1_ps(TANH_ALPHA[0]), |p, &a| _mm256_fmadd_ps(p, x2, _mm256_set1_ps(a)));
    let q = TANH_BETA[1..].iter().fold(_mm256_set1_ps(TANH_BETA[0]), |q, &b| _mm256_fmadd_ps(q, x2, _mm256_set1_ps(b)));
    _mm256_div_ps(_mm256_mul_ps(p, x), q)
}
