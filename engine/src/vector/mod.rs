//! Distance kernels (scalar, AVX2+FMA, AVX-512, NEON) behind one safe API with runtime CPU detection.
//!
//! The public functions are safe: they pick the best kernel the running CPU supports
//! (detected once, then cached) and fall back to the scalar reference otherwise.
//! `unsafe` lives only inside the per-ISA kernel files, each block with a SAFETY note.

mod isa;
pub(crate) mod scalar;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use isa::{Isa, Level};

/// Inner product of two equally long `f32` slices, using the fastest kernel this CPU has.
///
/// # Panics
/// If `a.len() != b.len()` (a programming error, like slice indexing out of bounds).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with(Isa::best(), a, b)
}

/// Inner product with an explicitly chosen kernel (tests and benches compare them).
///
/// `isa` comes from [`Isa::best`] or [`Isa::available`], so it is always supported here.
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn dot_with(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    match isa.level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 | Level::Avx512Vnni => x86::dot_avx512(isa, a, b),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => x86::dot_avx2(isa, a, b),
        #[cfg(target_arch = "aarch64")]
        Level::Neon => neon::dot_neon(isa, a, b),
        _ => scalar::dot(a, b),
    }
}

/// Squared L2 norm.
#[inline]
pub fn norm_sq(a: &[f32]) -> f32 {
    dot(a, a)
}

/// Scales `a` to unit L2 norm in place; leaves an all-zero vector unchanged.
pub fn normalize(a: &mut [f32]) {
    let n = norm_sq(a).sqrt();
    if n > 0.0 {
        let inv = 1.0 / n;
        a.iter_mut().for_each(|x| *x *= inv);
    }
}

#[cfg(test)]
mod tests;
