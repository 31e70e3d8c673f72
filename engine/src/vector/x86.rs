//! x86-64 kernels (AVX2+FMA, AVX-512). Callers pass an [`Isa`] obtained from runtime
//! detection, which is what makes the `#[target_feature]` calls sound.

use super::{Isa, Level};
use std::arch::x86_64::*;

/// AVX2+FMA inner product.
pub(super) fn dot_avx2(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(isa.level() >= Level::Avx2 && isa.level() != Level::Neon);
    let _ = isa;
    let n = a.len().min(b.len());
    // SAFETY: an `Isa` of at least Avx2 is only constructed after runtime detection of
    // avx2+fma, and the kernel reads only indices < n of both slices.
    unsafe { dot_avx2_impl(a.as_ptr(), b.as_ptr(), n) }
}

/// AVX-512 inner product.
pub(super) fn dot_avx512(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(matches!(isa.level(), Level::Avx512 | Level::Avx512Vnni));
    let _ = isa;
    let n = a.len().min(b.len());
    // SAFETY: an `Isa` of at least Avx512 is only constructed after runtime detection of
    // avx512f/bw/vl, and the kernel reads only indices < n of both slices.
    unsafe { dot_avx512_impl(a.as_ptr(), b.as_ptr(), n) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (whole body): every pointer offset below is < n, the caller's slice length.
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i + 8)), _mm256_loadu_ps(b.add(i + 8)), acc1);
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), acc0);
            i += 8;
        }
        let mut s = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            s += *a.add(i) * *b.add(i);
            i += 1;
        }
        s
    }
}

#[target_feature(enable = "avx2,fma")]
fn hsum256(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc0 = _mm512_setzero_ps();
    let mut acc1 = _mm512_setzero_ps();
    let mut i = 0;
    // SAFETY (whole body): full loads stay below n; the tail uses a masked load that
    // touches only the lanes < n.
    unsafe {
        while i + 32 <= n {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i)), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a.add(i + 16)), _mm512_loadu_ps(b.add(i + 16)), acc1);
            i += 32;
        }
        while i + 16 <= n {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i)), acc0);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
            let va = _mm512_maskz_loadu_ps(m, a.add(i));
            let vb = _mm512_maskz_loadu_ps(m, b.add(i));
            acc1 = _mm512_fmadd_ps(va, vb, acc1);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }
}
