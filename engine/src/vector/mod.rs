//! Distance kernels (scalar, AVX2+FMA, AVX-512, NEON) behind one safe API with runtime CPU detection.
//!
//! The public functions are safe: they pick the best kernel the running CPU supports
//! (detected once, then cached) and fall back to the scalar reference otherwise.
//! `unsafe` lives only inside the per-ISA kernel files, each block with a SAFETY note.

pub mod blocked;
mod isa;
pub(crate) mod scalar;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_blocked;

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

/// Scores int8 queries against blocked int8 gallery codes (layout in [`blocked`]):
/// `out[q * rows + r] = sum(code_u8 * query_i8)` for every row `r` of the blocks.
/// Query codes must lie within `±blocked::QUERY_MAX` and gallery bytes at most
/// `blocked::CODE_U8_MAX` (larger ones may saturate on AVX2).
///
/// # Panics
/// If the slices do not have the shapes of `nb` blocks, `nq` queries of `dp` values and
/// `nq * nb * 16` outputs, or `dp` is not a multiple of 4.
pub fn int8_block_scores(isa: Isa, blocks: &[u8], dp: usize, queries: &[i8], out: &mut [f32]) {
    let bb = blocked::int8_block_bytes(dp);
    assert!(dp > 0 && dp.is_multiple_of(4), "int8: padded dim must be a positive multiple of 4");
    assert!(blocks.len().is_multiple_of(bb) && queries.len().is_multiple_of(dp), "int8: ragged input");
    assert_eq!(out.len(), queries.len() / dp * (blocks.len() / bb) * blocked::BLOCK, "int8: out size");
    debug_assert!(
        queries.iter().all(|q| q.unsigned_abs() <= blocked::QUERY_MAX as u8),
        "int8: query code out of range"
    );
    debug_assert!(blocks.iter().all(|&b| b <= blocked::CODE_U8_MAX), "int8: gallery code out of range");
    match isa.level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512Vnni => x86_blocked::int8_vnni(blocks, dp, queries, out),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 | Level::Avx512 => x86_blocked::int8_avx2(blocks, dp, queries, out),
        _ => blocked::int8_scores(blocks, dp, queries, out),
    }
}

/// Scores f32 queries against blocked f16 gallery values (layout in [`blocked`]):
/// `out[q * rows + r] = sum(f16 * f32)`.
///
/// # Panics
/// On shapes that do not match, as for [`int8_block_scores`].
pub fn f16_block_scores(isa: Isa, blocks: &[u16], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * blocked::BLOCK;
    assert!(dim > 0 && blocks.len().is_multiple_of(bh) && queries.len().is_multiple_of(dim), "f16: ragged input");
    assert_eq!(out.len(), queries.len() / dim * (blocks.len() / bh) * blocked::BLOCK, "f16: out size");
    match isa.level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 | Level::Avx512Vnni => x86_blocked::f16_avx512(blocks, dim, queries, out),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => x86_blocked::f16_avx2(blocks, dim, queries, out),
        _ => blocked::f16_scores(blocks, dim, queries, out),
    }
}

/// Scores f32 queries against blocked f32 rows (layout in [`blocked`], see
/// [`blocked::pack_f32`]): `out[q * rows + r] = sum(g * q)`.
///
/// # Panics
/// On shapes that do not match, as for [`int8_block_scores`].
pub fn f32_block_scores(isa: Isa, blocks: &[f32], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * blocked::BLOCK;
    assert!(dim > 0 && blocks.len().is_multiple_of(bh) && queries.len().is_multiple_of(dim), "f32: ragged input");
    assert_eq!(out.len(), queries.len() / dim * (blocks.len() / bh) * blocked::BLOCK, "f32: out size");
    match isa.level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 | Level::Avx512Vnni => x86_blocked::f32_avx512(blocks, dim, queries, out),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => x86_blocked::f32_avx2(blocks, dim, queries, out),
        _ => blocked::f32_scores(blocks, dim, queries, out),
    }
}

/// Index of the first block of [`blocked::BLOCK`] scores, at or after block `from`, that
/// holds a score `>= thr` (the last block may be partial). A scan's shortlist uses it to
/// skip the blocks where no row can enter: most of them, once the shortlist has filled.
#[inline]
pub fn next_block_reaching(isa: Isa, scores: &[f32], from: usize, thr: f32) -> Option<usize> {
    match isa.level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 | Level::Avx512 | Level::Avx512Vnni => x86_blocked::next_block_reaching_avx2(scores, from, thr),
        _ => blocked::next_block_reaching(scores, from, thr),
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

/// Deterministic pseudo-random unit vectors, `n` rows of `dim` (xorshift, no extra
/// dependency): the data of the index tests, benches and `bench index` self-tests.
pub fn random_unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..dim {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            out.push(((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0);
        }
        normalize(&mut out[start..]);
    }
    out
}

#[cfg(test)]
mod tests;
