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

/// Safe entry: caller guarantees (via `Isa`) avx2 and queries within
/// `±QUERY_MAX`. `vpmaddubsw` multiplies u8 codes by i8 queries and adds pairs into i16,
/// which cannot saturate at that bound (2 * 255 * 63 < 32767); `vpmaddwd` by ones then
/// widens to i32. Up to 4 queries share each gallery load (batch search), and the rows
/// of a 32-byte load come out in order, so no horizontal shuffles are needed.
pub(super) fn int8_avx2(blocks: &[u8], dp: usize, queries: &[i8], out: &mut [f32]) {
    let bb = dp * BLOCK;
    let nb = blocks.len() / bb;
    let nq = queries.len() / dp;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows && dp.is_multiple_of(4));
    // queries outer: 4 queries stay in L1 while the (L2-sized) tile of blocks streams by
    let mut qi = 0;
    while qi < nq {
        let n = (nq - qi).min(4);
        // SAFETY: avx2 guaranteed by the dispatcher; all nb blocks and queries qi..qi+n
        // are in bounds, and the tiles write 16 floats at out[(qi + j) * rows + b * 16]
        // for j < n, b < nb, inside out (checked above).
        unsafe {
            let (g, q) = (blocks.as_ptr(), queries.as_ptr().add(qi * dp));
            let o = out.as_mut_ptr().add(qi * rows);
            match n {
                4 => avx2_int8_blocks::<4>(g, nb, q, dp, o, rows),
                3 => avx2_int8_blocks::<3>(g, nb, q, dp, o, rows),
                2 => avx2_int8_blocks::<2>(g, nb, q, dp, o, rows),
                _ => avx2_int8_blocks::<1>(g, nb, q, dp, o, rows),
            }
        }
        qi += n;
    }
}

/// How far ahead a single-query scan prefetches. One query, one thread, 1M x 512 on
/// transparent huge pages, distances alternated per query in one process: 1 KiB 23.1 ms,
/// none 23.8, 2 KiB 25.0, 4 KiB 25.7 (the bandwidth floor 22.7). At 100k x 512, partly
/// L3-resident, 2 KiB was best (1.83 ms against 2.10 at 1 KiB); the large gallery decides.
const PREFETCH_AHEAD: usize = 1024;

/// Q queries against `nb` consecutive blocks. The block loop lives in a function with
/// the target feature so the tile inlines into it: at d = 128 a tile is only 16 steps
/// and a call per block cost ~10 %.
#[target_feature(enable = "avx2")]
unsafe fn avx2_int8_blocks<const Q: usize>(
    g: *const u8,
    nb: usize,
    q: *const i8,
    dp: usize,
    out: *mut f32,
    rows: usize,
) {
    // SAFETY (whole body): nb blocks of dp * 16 bytes at g, and per block the tile's
    // contract (see `int8_avx2`).
    unsafe {
        for b in 0..nb {
            avx2_int8_tile::<Q>(g.add(b * dp * BLOCK), q, dp, out.add(b * BLOCK), rows);
        }
    }
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn avx2_int8_tile<const Q: usize>(g: *const u8, q: *const i8, dp: usize, out: *mut f32, rows: usize) {
    // SAFETY (whole body): one block of dp * 16 bytes at g, Q queries of dp bytes at q,
    // and 16 floats at out + j * rows for each j < Q.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); 2]; Q];
        let groups = dp / 4;
        // Two groups per step: their i16 pair sums are added before the one widening
        // `vpmaddwd` (3 multiply uops per 2 groups instead of 4). Gallery bytes ≤ CODE_U8_MAX
        // and queries ≤ QUERY_MAX bound each pair sum by 2 * 127 * 63, so two fit in i16.
        let mut grp = 0;
        while grp + 2 <= groups {
            let p = g.add(grp * 64);
            if Q == 1 {
                // one query is memory-bound: ask for the lines PREFETCH_AHEAD bytes ahead
                // (a prefetch of an address past the gallery is harmless)
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_AHEAD) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_AHEAD + 64) as *const i8);
            }
            // both halves (16 rows) per step: each query pair is broadcast once and used
            // on 4 gallery registers. At Q = 4 this spills one accumulator, and is still
            // ~10 % faster (batch search at 100k x 512) than half a block at a time.
            let g0 = _mm256_loadu_si256(p as *const __m256i);
            let g1 = _mm256_loadu_si256(p.add(32) as *const __m256i);
            let g2 = _mm256_loadu_si256(p.add(64) as *const __m256i);
            let g3 = _mm256_loadu_si256(p.add(96) as *const __m256i);
            for (j, a) in acc.iter_mut().enumerate() {
                let qp = q.add(j * dp + grp * 4) as *const i32;
                let (q0, q1) = (_mm256_set1_epi32(qp.read_unaligned()), _mm256_set1_epi32(qp.add(1).read_unaligned()));
                let t0 = _mm256_add_epi16(_mm256_maddubs_epi16(g0, q0), _mm256_maddubs_epi16(g2, q1));
                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(t0, ones));
                let t1 = _mm256_add_epi16(_mm256_maddubs_epi16(g1, q0), _mm256_maddubs_epi16(g3, q1));
                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(t1, ones));
            }
            grp += 2;
        }
        if grp < groups {
            // odd group count: the last group alone
            let p = g.add(grp * 64);
            let (lo, hi) = (_mm256_loadu_si256(p as *const __m256i), _mm256_loadu_si256(p.add(32) as *const __m256i));
            for (j, a) in acc.iter_mut().enumerate() {
                let qv = _mm256_set1_epi32((q.add(j * dp + grp * 4) as *const i32).read_unaligned());
                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, qv), ones));
                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, qv), ones));
            }
        }
        for (j, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(j * rows), _mm256_cvtepi32_ps(a[0]));
            _mm256_storeu_ps(out.add(j * rows + 8), _mm256_cvtepi32_ps(a[1]));
        }
    }
}

// ------------------------------------------------------------------ shortlist pre-check

/// Safe entry: caller guarantees (via `Isa`) avx2. Same answer as the scalar
/// `blocked::next_block_reaching`: two compares and one movemask per full block.
pub(super) fn next_block_reaching_avx2(scores: &[f32], from: usize, thr: f32) -> Option<usize> {
    let full = scores.len() / BLOCK;
    // SAFETY: avx2 guaranteed by the dispatcher; the loop reads blocks from..full, whose
    // 16 floats each lie inside `scores`.
    let hit = unsafe { first_full_block_reaching(scores.as_ptr(), from, full, thr) };
    hit.or_else(|| super::blocked::next_block_reaching(scores, full.max(from), thr))
}

#[target_feature(enable = "avx2")]
unsafe fn first_full_block_reaching(p: *const f32, from: usize, full: usize, thr: f32) -> Option<usize> {
    let t = _mm256_set1_ps(thr);
    // SAFETY (whole body): 16 floats at p + 16 b for from <= b < full (caller).
    unsafe {
        for b in from..full {
            let lo = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_loadu_ps(p.add(b * BLOCK)), t);
            let hi = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_loadu_ps(p.add(b * BLOCK + 8)), t);
            if _mm256_movemask_ps(_mm256_or_ps(lo, hi)) != 0 {
                return Some(b);
            }
        }
    }
    None
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

/// Safe entry: caller guarantees (via `Isa`) avx2 + fma + f16c. Up to 4 queries share
/// each gallery load (batch search) and give 8 independent FMA chains.
pub(super) fn f16_avx2(blocks: &[u16], dim: usize, queries: &[f32], out: &mut [f32]) {
    avx2_float_scan(blocks, dim, queries, out, |g, q, o, rows, n| {
        // SAFETY: see `avx2_float_scan`
        unsafe {
            match n {
                4 => avx2_f16_tile::<4>(g, q, dim, o, rows),
                3 => avx2_f16_tile::<3>(g, q, dim, o, rows),
                2 => avx2_f16_tile::<2>(g, q, dim, o, rows),
                _ => avx2_f16_tile::<1>(g, q, dim, o, rows),
            }
        }
    });
}

/// Safe entry: caller guarantees (via `Isa`) avx2 + fma. Same tiling as `f16_avx2`.
pub(super) fn f32_avx2(blocks: &[f32], dim: usize, queries: &[f32], out: &mut [f32]) {
    avx2_float_scan(blocks, dim, queries, out, |g, q, o, rows, n| {
        // SAFETY: see `avx2_float_scan`
        unsafe {
            match n {
                4 => avx2_f32_tile::<4>(g, q, dim, o, rows),
                3 => avx2_f32_tile::<3>(g, q, dim, o, rows),
                2 => avx2_f32_tile::<2>(g, q, dim, o, rows),
                _ => avx2_f32_tile::<1>(g, q, dim, o, rows),
            }
        }
    });
}

/// Queries outer in chunks of up to 4, blocks inner; `tile(g, q, out, rows, n)` scores
/// queries `q..q+n` against the block at `g` into `out + j * rows` (`j < n`). Every
/// pointer it is given is in bounds for that: block `b` of `dim * 16` values, `n`
/// queries of `dim` floats, 16 outputs per query row (sizes checked here).
fn avx2_float_scan<T>(
    blocks: &[T],
    dim: usize,
    queries: &[f32],
    out: &mut [f32],
    tile: impl Fn(*const T, *const f32, *mut f32, usize, usize),
) {
    let bh = dim * BLOCK;
    let nb = blocks.len() / bh;
    let nq = queries.len() / dim;
    let rows = nb * BLOCK;
    assert!(out.len() >= nq * rows && blocks.len() >= nb * bh);
    let mut qi = 0;
    while qi < nq {
        let n = (nq - qi).min(4);
        for b in 0..nb {
            // wrapping_add: plain pointer arithmetic, in bounds by the checks above
            let g = blocks.as_ptr().wrapping_add(b * bh);
            let q = queries.as_ptr().wrapping_add(qi * dim);
            let o = out.as_mut_ptr().wrapping_add(qi * rows + b * BLOCK);
            tile(g, q, o, rows, n);
        }
        qi += n;
    }
}

/// One register tile (Q queries x 16 rows) over `dim` values; `$load` turns 8 gallery
/// values at a pointer into 8 f32 lanes.
macro_rules! avx2_float_tile {
    ($name:ident, $t:ty, $features:literal, $load:expr) => {
        #[target_feature(enable = $features)]
        unsafe fn $name<const Q: usize>(g: *const $t, q: *const f32, dim: usize, out: *mut f32, rows: usize) {
            // SAFETY (whole body): dim * 16 values at g, Q queries of dim floats at q, 16
            // floats at out + j * rows for each j < Q (see `avx2_float_scan`).
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); 2]; Q];
                for k in 0..dim {
                    let p = g.add(k * BLOCK);
                    let (lo, hi) = ($load(p), $load(p.add(8)));
                    for (j, a) in acc.iter_mut().enumerate() {
                        let qv = _mm256_set1_ps(*q.add(j * dim + k));
                        a[0] = _mm256_fmadd_ps(lo, qv, a[0]);
                        a[1] = _mm256_fmadd_ps(hi, qv, a[1]);
                    }
                }
                for (j, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(out.add(j * rows), a[0]);
                    _mm256_storeu_ps(out.add(j * rows + 8), a[1]);
                }
            }
        }
    };
}

avx2_float_tile!(avx2_f16_tile, u16, "avx2,fma,f16c", |p: *const u16| _mm256_cvtph_ps(_mm_loadu_si128(
    p as *const __m128i
)));
avx2_float_tile!(avx2_f32_tile, f32, "avx2,fma", |p: *const f32| _mm256_loadu_ps(p));

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
