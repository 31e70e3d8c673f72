//! AArch64 NEON kernels.

use super::{Isa, Level};
use std::arch::aarch64::*;

/// NEON inner product.
pub(super) fn dot_neon(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(isa.level(), Level::Neon);
    let _ = isa;
    let n = a.len().min(b.len());
    // SAFETY: `Isa::Neon` is only constructed after runtime detection of neon, and the
    // kernel reads only indices < n of both slices.
    unsafe { dot_neon_impl(a.as_ptr(), b.as_ptr(), n) }
}

#[target_feature(enable = "neon")]
unsafe fn dot_neon_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc0 = vdupq_n_f32(0.0);
    let mut acc1 = vdupq_n_f32(0.0);
    let mut i = 0;
    // SAFETY (whole body): every pointer offset is < n.
    unsafe {
        while i + 8 <= n {
            acc0 = vfmaq_f32(acc0, vld1q_f32(a.add(i)), vld1q_f32(b.add(i)));
            acc1 = vfmaq_f32(acc1, vld1q_f32(a.add(i + 4)), vld1q_f32(b.add(i + 4)));
            i += 8;
        }
        let mut s = vaddvq_f32(vaddq_f32(acc0, acc1));
        while i < n {
            s += *a.add(i) * *b.add(i);
            i += 1;
        }
        s
    }
}
