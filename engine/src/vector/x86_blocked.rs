//! x86-64 kernels for the blocked int8 / f16 layouts (see `blocked.rs`).
//!
//! Register tiling: `NQ` queries x `BT` blocks of 16 rows, one accumulator register per
//! (query, block) pair, so each gallery load is reused `NQ` times.

use super::blocked::BLOCK;
use std::arch::x86_64::*;

/// Queries per register tile in the batched kernels.
const NQ: usize = 8;

// ------------------------------------------------------------------ int8, AVX-512 VNNI

/// Safe entry: caller guarantees (via `Isa`) avx512f/bw/vl + avx512vnni.
pub(super) fn int8_vnni(blocks: &[u8], dp: usize, queries: &[i8], out: &mut [f32]) {
    let bb = dp * BLOCK;
    let nb = blocks.len() / bb;
    let nq = queries.len() / dp;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows && dp.is_multiple_of(4));
    let mut q0 = 0;
    while q0 < nq {
        let take = if nq - q0 >= NQ { NQ } else { 1 };
        let mut b = 0;
        while b < nb {
            let bt = if nb - b >= 2 { 2 } else { 1 };
            // SAFETY: the Isa check done by the dispatcher guarantees the CPU features;
            // blocks b..b+bt and queries q0..q0+take are in bounds (checked above), and
            // the kernel writes out[(q0+i) * rows + (b+j) * 16 + 0..16] for i < take, j < bt.
            unsafe {
                let gp = blocks.as_ptr().add(b * bb);
                let qp = queries.as_ptr().add(q0 * dp);
                let op = out.as_mut_ptr().add(q0 * rows + b * BLOCK);
                match (take, bt) {
                    (NQ, 2) => vnni_tile::<NQ, 2>(gp, bb, qp, dp, op, rows),
                    (NQ, _) => vnni_tile::<NQ, 1>(gp, bb, qp, dp, op, rows),
                    (_, 2) => vnni_tile::<1, 2>(gp, bb, qp, dp, op, rows),
                    _ => vnni_tile::<1, 1>(gp, bb, qp, dp, op, rows),
                }
            }
            b += bt;
        }
        q0 += take;
    }
}

#[allow(clippy::needless_range_loop)] // (query, block) register tile reads clearer indexed
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_tile<const Q: usize, const B: usize>(
    g: *const u8,
    bb: usize,
    q: *const i8,
    dp: usize,
    out: *mut f32,
    rows: usize,
) {
    let mut acc = [[_mm512_setzero_si512(); Q]; B];
    // SAFETY (whole body): the caller guarantees B blocks of bb bytes at g, Q queries of
    // dp bytes at q and the output rows described in `int8_vnni`.
    unsafe {
        for grp in 0..dp / 4 {
            let mut gv = [_mm512_setzero_si512(); B];
            for (j, v) in gv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(g.add(j * bb + grp * 64) as *const _);
            }
            for i in 0..Q {
                let qv = _mm512_set1_epi32((q.add(i * dp + grp * 4) as *const i32).read_unaligned());
                for j in 0..B {
                    acc[j][i] = _mm512_dpbusd_epi32(acc[j][i], gv[j], qv);
                }
            }
        }
        for i in 0..Q {
            for (j, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(i * rows + j * BLOCK), _mm512_cvtepi32_ps(a[i]));
            }
        }
    }
}

// ------------------------------------------------------------------ int8, AVX2

/// Safe entry: caller guarantees (via `Isa`) avx2. Widens to i16 and uses `vpmaddwd`,
/// which cannot saturate (unlike `vpmaddubsw` on u8 x i8).
pub(super) fn int8_avx2(blocks: &[u8], dp: usize, queries: &[i8], out: &mut [f32]) {
    let bb = dp * BLOCK;
    let nb = blocks.len() / bb;
    let nq = queries.len() / dp;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows && dp.is_multiple_of(4));
    for qi in 0..nq {
        for b in 0..nb {
            // SAFETY: avx2 guaranteed by the dispatcher; block b and query qi are in bounds
            // and the kernel writes the 16 floats at out[qi * rows + b * 16].
            unsafe {
                avx2_int8_block(
                    blocks.as_ptr().add(b * bb),
                    queries.as_ptr().add(qi * dp),
                    dp,
                    out.as_mut_ptr().add(qi * rows + b * BLOCK),
                )
            }
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn avx2_int8_block(g: *const u8, q: *const i8, dp: usize, out: *mut f32) {
    let mut acc = [_mm256_setzero_si256(); 4];
    // SAFETY (whole body): one block of dp * 16 bytes at g, dp bytes at q, 16 floats at out.
    unsafe {
        for grp in 0..dp / 4 {
            let qb = q.add(grp * 4);
            // [q0 q1 q2 q3] as i16, repeated 4 times.
            let q4 = _mm_cvtepi8_epi16(_mm_cvtsi32_si128((qb as *const i32).read_unaligned()));
            let qv = _mm256_broadcastq_epi64(q4);
            for (k, a) in acc.iter_mut().enumerate() {
                let bytes = _mm_loadu_si128(g.add(grp * 64 + k * 16) as *const __m128i);
                let w = _mm256_cvtepu8_epi16(bytes);
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(w, qv));
            }
        }
        // acc[k] lanes = [r0 lo, r0 hi, r1 lo, r1 hi | r2 lo, r2 hi, r3 lo, r3 hi] for rows 4k..4k+4.
        for half in 0..2 {
            let h = _mm256_hadd_epi32(acc[2 * half], acc[2 * half + 1]);
            // hadd gives [r0 r1 r4 r5 | r2 r3 r6 r7]; reorder the 64-bit pairs to r0..r7.
            let h = _mm256_permute4x64_epi64(h, 0b11_01_10_00);
            _mm256_storeu_ps(out.add(half * 8), _mm256_cvtepi32_ps(h));
        }
    }
}

// ------------------------------------------------------------------ f16, AVX-512

/// Safe entry: caller guarantees (via `Isa`) avx512f (+ f16c, checked with avx2).
pub(super) fn f16_avx512(blocks: &[u16], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * BLOCK;
    let nb = blocks.len() / bh;
    let nq = queries.len() / dim;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows);
    let mut q0 = 0;
    while q0 < nq {
        let take = if nq - q0 >= NQ { NQ } else { 1 };
        let mut b = 0;
        while b < nb {
            let bt = if nb - b >= 2 { 2 } else { 1 };
            // SAFETY: as in `int8_vnni`, with halves instead of bytes.
            unsafe {
                let gp = blocks.as_ptr().add(b * bh);
                let qp = queries.as_ptr().add(q0 * dim);
                let op = out.as_mut_ptr().add(q0 * rows + b * BLOCK);
                match (take, bt) {
                    (NQ, 2) => f16_tile::<NQ, 2>(gp, bh, qp, dim, op, rows),
                    (NQ, _) => f16_tile::<NQ, 1>(gp, bh, qp, dim, op, rows),
                    (_, 2) => f16_tile::<1, 2>(gp, bh, qp, dim, op, rows),
                    _ => f16_tile::<1, 1>(gp, bh, qp, dim, op, rows),
                }
            }
            b += bt;
        }
        q0 += take;
    }
}

#[allow(clippy::needless_range_loop)] // (query, block) register tile reads clearer indexed
#[target_feature(enable = "avx512f")]
unsafe fn f16_tile<const Q: usize, const B: usize>(
    g: *const u16,
    bh: usize,
    q: *const f32,
    dim: usize,
    out: *mut f32,
    rows: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); Q]; B];
    // SAFETY (whole body): B blocks of bh halves at g, Q queries of dim floats at q.
    unsafe {
        for k in 0..dim {
            let mut gv = [_mm512_setzero_ps(); B];
            for (j, v) in gv.iter_mut().enumerate() {
                *v = _mm512_cvtph_ps(_mm256_loadu_si256(g.add(j * bh + k * BLOCK) as *const _));
            }
            for i in 0..Q {
                let qv = _mm512_set1_ps(*q.add(i * dim + k));
                for j in 0..B {
                    acc[j][i] = _mm512_fmadd_ps(gv[j], qv, acc[j][i]);
                }
            }
        }
        for i in 0..Q {
            for (j, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(i * rows + j * BLOCK), a[i]);
            }
        }
    }
}

// ------------------------------------------------------------------ f16, AVX2 + F16C

/// Safe entry: caller guarantees (via `Isa`) avx2 + fma + f16c.
pub(super) fn f16_avx2(blocks: &[u16], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * BLOCK;
    let nb = blocks.len() / bh;
    let nq = queries.len() / dim;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows);
    for qi in 0..nq {
        for b in 0..nb {
            // SAFETY: avx2/fma/f16c guaranteed by the dispatcher; block b, query qi and the
            // 16 output floats are in bounds.
            unsafe {
                avx2_f16_block(
                    blocks.as_ptr().add(b * bh),
                    queries.as_ptr().add(qi * dim),
                    dim,
                    out.as_mut_ptr().add(qi * rows + b * BLOCK),
                )
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2_f16_block(g: *const u16, q: *const f32, dim: usize, out: *mut f32) {
    let mut lo = _mm256_setzero_ps();
    let mut hi = _mm256_setzero_ps();
    // SAFETY (whole body): dim * 16 halves at g, dim floats at q, 16 floats at out.
    unsafe {
        for k in 0..dim {
            let qv = _mm256_set1_ps(*q.add(k));
            let p = g.add(k * BLOCK);
            lo = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p as *const _)), qv, lo);
            hi = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p.add(8) as *const _)), qv, hi);
        }
        _mm256_storeu_ps(out, lo);
        _mm256_storeu_ps(out.add(8), hi);
    }
}

// ------------------------------------------------------------------ f32, AVX-512

/// Safe entry: caller guarantees (via `Isa`) avx512f. Same tiling as `f16_avx512`.
pub(super) fn f32_avx512(blocks: &[f32], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * BLOCK;
    let nb = blocks.len() / bh;
    let nq = queries.len() / dim;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows);
    let mut q0 = 0;
    while q0 < nq {
        let take = if nq - q0 >= NQ { NQ } else { 1 };
        let mut b = 0;
        while b < nb {
            let bt = if nb - b >= 2 { 2 } else { 1 };
            // SAFETY: as in `int8_vnni`, with floats instead of bytes.
            unsafe {
                let gp = blocks.as_ptr().add(b * bh);
                let qp = queries.as_ptr().add(q0 * dim);
                let op = out.as_mut_ptr().add(q0 * rows + b * BLOCK);
                match (take, bt) {
                    (NQ, 2) => f32_tile::<NQ, 2>(gp, bh, qp, dim, op, rows),
                    (NQ, _) => f32_tile::<NQ, 1>(gp, bh, qp, dim, op, rows),
                    (_, 2) => f32_tile::<1, 2>(gp, bh, qp, dim, op, rows),
                    _ => f32_tile::<1, 1>(gp, bh, qp, dim, op, rows),
                }
            }
            b += bt;
        }
        q0 += take;
    }
}

#[allow(clippy::needless_range_loop)] // (query, block) register tile reads clearer indexed
#[target_feature(enable = "avx512f")]
unsafe fn f32_tile<const Q: usize, const B: usize>(
    g: *const f32,
    bh: usize,
    q: *const f32,
    dim: usize,
    out: *mut f32,
    rows: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); Q]; B];
    // SAFETY (whole body): B blocks of bh floats at g, Q queries of dim floats at q.
    unsafe {
        for k in 0..dim {
            let mut gv = [_mm512_setzero_ps(); B];
            for (j, v) in gv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(g.add(j * bh + k * BLOCK));
            }
            for i in 0..Q {
                let qv = _mm512_set1_ps(*q.add(i * dim + k));
                for j in 0..B {
                    acc[j][i] = _mm512_fmadd_ps(gv[j], qv, acc[j][i]);
                }
            }
        }
        for i in 0..Q {
            for (j, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(i * rows + j * BLOCK), a[i]);
            }
        }
    }
}
