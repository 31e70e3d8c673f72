//! The stem kernel in AVX2 + FMA intrinsics: the 8 channels of a group accumulate in
//! registers (LLVM's auto-vectorizer spilled them and shuffled inputs, ~4x slower), and
//! LayerNorm, GELU and pooling work on whole 8-pixel vectors. Tested against the portable
//! kernel and the f64 definition in `super::tests`.

use std::arch::x86_64::*;

use super::{Branch, GROUP, Group, MAX_CHANNELS, PAD, Pool, STRIP, TANH_ALPHA, TANH_BETA, TANH_CLAMP, TAPS};
use super::{GELU_CUBIC, GELU_SCALE};

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
    let mut acc: [__m256; GROUP] = std::array::from_fn(|k| _mm256_set1_ps(g.bias[k]));
    for t in 0..TAPS {
        let off = (t / 5) * D * stride + (t % 5) * D;
        // SAFETY: off + STRIP <= window.len() (off ≤ 4·D·stride + 4·D).
        let src = unsafe { _mm256_loadu_ps(window.as_ptr().add(off)) };
        for (a, &w) in acc.iter_mut().zip(&g.weights[t]) {
            *a = _mm256_fmadd_ps(_mm256_set1_ps(w), src, *a);
        }
    }
    acc
}

/// LayerNorm over the channels of each pixel, then the tanh-GELU, in place.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn norm_gelu(v: &mut [__m256], gamma: &[f32], beta: &[f32], epsilon: f32) {
    let n = _mm256_set1_ps(v.len() as f32);
    let mean = _mm256_div_ps(v.iter().fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x)), n);
    let var = v.iter().fold(_mm256_setzero_ps(), |s, &x| {
        let d = _mm256_sub_ps(x, mean);
        _mm256_add_ps(s, _mm256_mul_ps(d, d))
    });
    let inv = _mm256_div_ps(
        _mm256_set1_ps(1.0),
        _mm256_sqrt_ps(_mm256_add_ps(_mm256_div_ps(var, n), _mm256_set1_ps(epsilon))),
    );
    for ((x, &g), &b) in v.iter_mut().zip(gamma).zip(beta) {
        let y = _mm256_add_ps(
            _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(*x, mean), inv), _mm256_set1_ps(g)),
            _mm256_set1_ps(b),
        );
        *x = gelu(y);
    }
}

/// `super::gelu` on 8 lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn gelu(x: __m256) -> __m256 {
    let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    let u = _mm256_mul_ps(_mm256_set1_ps(GELU_SCALE), _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(GELU_CUBIC), x3)));
    let t = tanh(u);
    _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), x), _mm256_add_ps(_mm256_set1_ps(1.0), t))
}

/// `super::tanh` on 8 lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tanh(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-TANH_CLAMP)), _mm256_set1_ps(TANH_CLAMP));
    let x2 = _mm256_mul_ps(x, x);
    let p = TANH_ALPHA.iter().fold(_mm256_setzero_ps(), |p, &a| _mm256_fmadd_ps(p, x2, _mm256_set1_ps(a)));
    let q = TANH_BETA.iter().fold(_mm256_setzero_ps(), |q, &b| _mm256_fmadd_ps(q, x2, _mm256_set1_ps(b)));
    _mm256_div_ps(_mm256_mul_ps(p, x), q)
}
