//! The AVX2 kernels of the comparison: cylinder keys, the near-pair filter, the sigmoids
//! (with a vector `expf` bit for bit glibc's) and the relaxation. Each gives the bits of
//! its scalar reference (tested in `super::tests`); they run only where [`Isa`] found
//! AVX2, FMA and POPCNT. Also the portable comparison compiled with POPCNT, for x86 CPUs
//! without AVX2 or a level forced down to scalar.

use std::arch::x86_64::*;

use super::compare::{NearPairs, SPARE, Scratch, compare};
use super::local::dir_window;
use super::{
    CELLS, MAX_NR, MIN_ME, MU1, MU2, MU3, MccTemplate, N_REL, ND, PAD, PLANE_WORDS, TAU1, TAU2, TAU3, W_R, WORDS,
};
use crate::vector::{Isa, Level};

/// Every key of the comparison (rows of `gamma`, `stride` = `b.len() + PAD` apart) and the
/// row maxima, as [`row_keys`] over each `a` cylinder's direction window (or all of `b`),
/// eight `b` cylinders at a time: the bit counts of four pairs come from 256-bit AND/XOR
/// and a nibble-table popcount (bytes summed over the six words, then one `vpsadbw` per
/// count); the rest of each pair is the scalar code's IEEE operations in the same order,
/// so the keys are bit for bit those of the scalar path (tested). The last group of a
/// run is masked rather than finished in scalar code: `b`'s arrays carry [`PAD`] spare
/// entries for its loads and `gamma`'s rows [`PAD`] spare columns for its store. One call
/// per comparison, so the constants are set up once and nothing is a function call.
#[target_feature(enable = "avx2,popcnt")]
pub(super) unsafe fn keys_avx2<const WINDOW: bool>(
    a: &MccTemplate,
    b: &MccTemplate,
    gamma: &mut [u64],
    stride: usize,
    row_max: &mut [u64],
) {
    const _: () = assert!(PLANE_WORDS == 1, "the AVX2 kernel assumes one validity word");
    let (na, nb) = (a.len(), b.len());
    assert!(stride == nb + PAD && gamma.len() == na * stride && row_max.len() == na);
    assert!(b.planes.len() == (WORDS + 1) * nb + PAD && b.by_dir.len() == nb + PAD);
    assert!(b.dir_cos.len() == nb + PAD && b.dir_sin.len() == nb + PAD);
    let planes = b.planes.as_ptr();
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let low4 = _mm256_set1_epi8(0x0f);
    let zero = _mm256_setzero_si256();
    // per-byte popcount
    macro_rules! popb {
        ($v:expr) => {{
            let v = $v;
            let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low4));
            let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
            _mm256_add_epi8(lo, hi)
        }};
    }
    let min_common = (MIN_ME * CELLS as f32) as i32;
    // cylinder offset of each 32-bit lane in the interleaved order (see the loop): added
    // to k for the run mask, and the permutation that brings b's directions into it
    let lane = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let high32 = _mm256_set1_epi64x(0xFFFF_FFFF_0000_0000u64 as i64);
    let mut hints = [0; 3];
    for ka in 0..na {
        let i = a.by_dir[ka] as usize;
        let (start, end) = if WINDOW { dir_window(b, a.sorted_theta[ka], &mut hints) } else { (0, nb) };
        let (ca, va) = (a.cyl(ka), a.valid(ka)[0]);
        let va4 = _mm256_set1_epi64x(va as i64);
        let ca4: [__m256i; WORDS] = std::array::from_fn(|w| _mm256_set1_epi64x(ca[w] as i64));
        let (ci8, si8) = (_mm256_set1_ps(a.dir_cos[ka]), _mm256_set1_ps(a.dir_sin[ka]));
        let key_hi = _mm256_set1_epi64x(((i as u64) << 16) as i64);
        let row = gamma[i * stride..(i + 1) * stride].as_mut_ptr();
        let mut best4 = zero;
        // The wrapped run first: its masked last group may store zeros into the first
        // columns of the other run, which that run then overwrites.
        for (lo, hi) in [(0, end.saturating_sub(nb)), (start, end.min(nb))] {
            let hi_8 = _mm256_set1_epi32(hi as i32);
            let mut k = lo;
            while k < hi {
                // The bit counts of cylinders k..k + 4 as four u32 (common, in a, in b, differing).
                let counts = |k: usize| {
                    // SAFETY: k < hi + 4 <= nb + 4, plane w occupies planes[w * nb .. (w + 1) * nb],
                    // and PAD = 7 spare words follow the last plane: every load of 4 words is
                    // in bounds (lanes past `hi` read a neighbouring plane or the spare words
                    // and are masked below).
                    let m = _mm256_and_si256(va4, unsafe { _mm256_loadu_si256(planes.add(WORDS * nb + k).cast()) });
                    let common = _mm256_sad_epu8(popb!(m), zero);
                    let (mut sa, mut sb, mut sx) = (zero, zero, zero);
                    // byte sums stay ≤ 8 x WORDS = 48: no overflow before the sad
                    for (w, &caw) in ca4.iter().enumerate() {
                        // SAFETY: as above
                        let cb = unsafe { _mm256_loadu_si256(planes.add(w * nb + k).cast()) };
                        let x = _mm256_and_si256(caw, m);
                        let y = _mm256_and_si256(cb, m);
                        sa = _mm256_add_epi8(sa, popb!(x));
                        sb = _mm256_add_epi8(sb, popb!(y));
                        sx = _mm256_add_epi8(sx, popb!(_mm256_xor_si256(x, y)));
                    }
                    [common, _mm256_sad_epu8(sa, zero), _mm256_sad_epu8(sb, zero), _mm256_sad_epu8(sx, zero)]
                };
                // Eight pairs per step, so the float part below (square roots, division) runs
                // once per eight. Each count is a u64 lane < 2^16, so the two groups' counts
                // share a register without a lane-crossing shuffle: 32-bit lane 2q holds
                // cylinder k + q, lane 2q + 1 cylinder k + 4 + q ("interleaved" order).
                let (lo4, hi4c) = (counts(k), counts(k + 4));
                let [c, na8, nb8, nx8] =
                    std::array::from_fn(|q| _mm256_or_si256(lo4[q], _mm256_slli_epi64(hi4c[q], 32)));
                // the rest of `similarity_of_counts` and `put_key`, eight lanes at a time, the
                // same IEEE operations in the same order (so the same bits); IEEE square roots
                // are correctly rounded, so these are the values of the scalar path's table
                // (three gathers from it were slower than `vsqrtps`)
                let sqrt = |v: __m256i| _mm256_sqrt_ps(_mm256_cvtepi32_ps(v));
                let (qa, qb, qx) = (sqrt(na8), sqrt(nb8), sqrt(nx8));
                let l = _mm256_sub_ps(
                    _mm256_set1_ps(1.0),
                    _mm256_div_ps(qx, _mm256_max_ps(_mm256_add_ps(qa, qb), _mm256_set1_ps(1e-9))),
                );
                let comparable = _mm256_and_si256(
                    _mm256_cmpgt_epi32(
                        _mm256_mullo_epi32(c, _mm256_set1_epi32(ND as i32)),
                        _mm256_set1_epi32(min_common - 1),
                    ),
                    _mm256_cmpgt_epi32(_mm256_add_epi32(na8, nb8), zero),
                );
                // SAFETY: k < nb and dir_cos / dir_sin hold nb + PAD = nb + 7 entries
                let (cb8, sb8) = unsafe {
                    (
                        _mm256_permutevar8x32_ps(_mm256_loadu_ps(b.dir_cos.as_ptr().add(k)), lane),
                        _mm256_permutevar8x32_ps(_mm256_loadu_ps(b.dir_sin.as_ptr().add(k)), lane),
                    )
                };
                let gate = _mm256_cmp_ps::<_CMP_GE_OQ>(
                    _mm256_add_ps(_mm256_mul_ps(ci8, cb8), _mm256_mul_ps(si8, sb8)),
                    _mm256_setzero_ps(),
                );
                let keep = _mm256_and_si256(
                    _mm256_and_si256(comparable, _mm256_castps_si256(gate)),
                    _mm256_and_si256(
                        _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(l, _mm256_setzero_ps())),
                        // lanes of this run only
                        _mm256_cmpgt_epi32(hi_8, _mm256_add_epi32(_mm256_set1_epi32(k as i32), lane)),
                    ),
                );
                // SAFETY: k < nb and by_dir holds nb + PAD entries: 16 bytes read
                let j8 = unsafe { _mm_loadu_si128(b.by_dir.as_ptr().add(k).cast()) };
                let l_bits = _mm256_castps_si256(l);
                // back to cylinder order: the first group's λ and mask are the even 32-bit
                // lanes, the second's the odd ones; each goes to the high half of its key
                let halves = [
                    (_mm256_slli_epi64(l_bits, 32), _mm256_shuffle_epi32::<0b10_10_00_00>(keep), j8),
                    (
                        _mm256_and_si256(l_bits, high32),
                        _mm256_shuffle_epi32::<0b11_11_01_01>(keep),
                        _mm_unpackhi_epi64(j8, j8),
                    ),
                ];
                for (half, (l_hi, keep4, j4)) in halves.into_iter().enumerate() {
                    let keys = _mm256_and_si256(
                        _mm256_or_si256(_mm256_or_si256(l_hi, key_hi), _mm256_cvtepu16_epi64(j4)),
                        keep4,
                    );
                    // keys < 2^63: a signed compare orders them
                    best4 = _mm256_blendv_epi8(best4, keys, _mm256_cmpgt_epi64(keys, best4));
                    // SAFETY: k + 4 * half + 4 <= k + 8 <= nb + PAD = stride: inside this row
                    unsafe { _mm256_storeu_si256(row.add(k + 4 * half).cast(), keys) };
                }
                k += 8;
            }
        }
        let mut lanes = [0u64; 4];
        // SAFETY: `lanes` is 32 writable bytes
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), best4) };
        row_max[i] = lanes.into_iter().max().unwrap_or(0);
    }
}

/// The comparison with the AVX2 kernels.
///
/// # Panics
/// If `isa` is below AVX2 (a programming error: the dispatch checks the level).
pub(super) fn similarity(isa: Isa, a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    assert!(
        matches!(isa.level(), Level::Avx2 | Level::Avx512 | Level::Avx512Vnni),
        "MCC AVX2 kernel on {}",
        isa.name()
    );
    // SAFETY: an `Isa` of level Avx2 or above exists only where run-time detection found
    // AVX2, FMA and POPCNT, the features `similarity_avx2` is compiled for.
    unsafe { similarity_avx2(a, b, sc) }
}

/// The portable comparison compiled with POPCNT.
///
/// # Panics
/// If `isa` says the CPU has no POPCNT (a programming error: the dispatch checks it).
pub(super) fn similarity_popcnt(isa: Isa, a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    assert!(isa.popcnt(), "MCC POPCNT kernel without POPCNT");
    // SAFETY: `Isa::popcnt` is true only where run-time detection found POPCNT, the one
    // feature `compare_popcnt` is compiled for.
    unsafe { compare_popcnt(a, b, sc) }
}

/// [`compare`] compiled with the POPCNT instruction: the baseline x86-64 target has none,
/// and `count_ones` then becomes a ~12-instruction bit trick per word.
#[target_feature(enable = "popcnt")]
unsafe fn compare_popcnt(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    compare::<true, false>(a, b, sc)
}

/// [`compare`] with the AVX2 kernels ([`keys_avx2`], [`sigmoids_avx2`], ...).
#[target_feature(enable = "avx2,fma,popcnt")]
pub(super) unsafe fn similarity_avx2(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    compare::<true, true>(a, b, sc)
}

/// glibc's `expf` (sysdeps/ieee754/flt-32/e_expf.c) on four lanes, bit for bit as the
/// FMA variant glibc runs on every CPU with AVX2 and FMA: x·32/ln2 = k + r, 2^(k/32) from a
/// 32-entry table, 2^(r/32) by a degree-3 polynomial, all in double, with the fused
/// multiply-adds where that variant has them. For |x| < 88 (glibc's special-case path for
/// overflow and underflow is not reproduced): the sigmoid arguments stay within ±87.
#[target_feature(enable = "avx2,fma")]
pub(super) fn expf4(x: __m128) -> __m128 {
    /// `__exp2f_data.tab`: bits of 2^(i/32) minus i << 47.
    static T: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    let c = |bits: u64| _mm256_set1_pd(f64::from_bits(bits));
    let (inv_ln2_n, shift) = (c(0x40471547652b82fe), c(0x4338000000000000));
    let (c0, c1, c2) = (c(0x3ebc6af84b912394), c(0x3f2ebfce50fac4f3), c(0x3f962e42ff0c52d6));
    let xd = _mm256_cvtps_pd(x);
    let kd = _mm256_fmadd_pd(inv_ln2_n, xd, shift);
    let ki = _mm256_castpd_si256(kd);
    let r = _mm256_fmsub_pd(inv_ln2_n, xd, _mm256_sub_pd(kd, shift));
    // SAFETY: the indices are masked to 0..32, the table's length
    let tab = unsafe { _mm256_i64gather_epi64::<8>(T.as_ptr().cast(), _mm256_and_si256(ki, _mm256_set1_epi64x(31))) };
    let s = _mm256_castsi256_pd(_mm256_add_epi64(tab, _mm256_slli_epi64(ki, 47)));
    let z = _mm256_fmadd_pd(r, c0, c1);
    let y = _mm256_fmadd_pd(r, c2, _mm256_set1_pd(1.0));
    let y = _mm256_fmadd_pd(z, _mm256_mul_pd(r, r), y);
    _mm256_cvtpd_ps(_mm256_mul_pd(y, s))
}

/// ρ = sigmoid(d1) · sigmoid(d2) · sigmoid(d3) for every complete group of four entries,
/// the same f32 operations as [`sigmoid`] with [`expf4`]; returns how many were done.
#[target_feature(enable = "avx2,fma")]
pub(super) fn sigmoids_avx2(d1: &[f32], d2: &[f32], d3: &[f32], r: &mut [f32]) -> usize {
    let sig = |v: &[f32], mu: f32, tau: f32| {
        // SAFETY: `v` has 4 elements (`chunks_exact`)
        let v = unsafe { _mm_loadu_ps(v.as_ptr()) };
        let e = expf4(_mm_mul_ps(_mm_set1_ps(-tau), _mm_sub_ps(v, _mm_set1_ps(mu))));
        _mm_div_ps(_mm_set1_ps(1.0), _mm_add_ps(_mm_set1_ps(1.0), e))
    };
    let groups = d1.len() / 4;
    for (g, out) in r.chunks_exact_mut(4).take(groups).enumerate() {
        let at = 4 * g..4 * g + 4;
        let p = _mm_mul_ps(
            _mm_mul_ps(sig(&d1[at.clone()], MU1, TAU1), sig(&d2[at.clone()], MU2, TAU2)),
            sig(&d3[at], MU3, TAU3),
        );
        // SAFETY: `out` has 4 elements
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), p) };
    }
    4 * groups
}

/// For each mask of eight lanes, the kept lanes' numbers in order (the rest 0): a
/// `vpermps` with this row packs the kept lanes to the front.
static COMPRESS: [[u32; 8]; 256] = {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut out, mut lane) = (0, 0);
        while lane < 8 {
            if (m >> lane) & 1 == 1 {
                t[m][out] = lane as u32;
                out += 1;
            }
            lane += 1;
        }
        m += 1;
    }
    t
};

/// The pairs of relaxation pairs `t < k` whose d1 ([`pair_d1`], the same IEEE operations)
/// is ≤ 15 or NaN, appended to `sv` in the scalar loop's order: eight `k` at a time, the
/// kept lanes packed with [`COMPRESS`]. `px` arrays need [`SPARE`] entries after the `n`
/// pairs, `sv` room for [`SPARE`] more than it keeps.
#[target_feature(enable = "avx2")]
pub(super) fn near_pairs_avx2(px: &[Vec<f32>; 4], n: usize, sv: &mut NearPairs) {
    assert!(px.iter().all(|v| v.len() >= n + SPARE));
    assert!(
        sv.len == 0 && [sv.t.len(), sv.k.len(), sv.d1.len()].iter().all(|&l| l >= n * n.saturating_sub(1) / 2 + SPARE)
    );
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let fifteen = _mm256_set1_ps(15.0);
    let step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut len = 0;
    for t in 0..n {
        let at = |c: usize| _mm256_set1_ps(px[c][t]);
        let (xat, yat, xbt, ybt) = (at(0), at(1), at(2), at(3));
        let tv = _mm256_set1_epi32(t as i32);
        let mut k = t + 1;
        while k < n {
            // SAFETY: k < n and every array holds n + SPARE = n + 8 entries
            let ld = |c: usize| unsafe { _mm256_loadu_ps(px[c].as_ptr().add(k)) };
            let (dxa, dya) = (_mm256_sub_ps(ld(0), xat), _mm256_sub_ps(ld(1), yat));
            let (dxb, dyb) = (_mm256_sub_ps(ld(2), xbt), _mm256_sub_ps(ld(3), ybt));
            let da = _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(dxa, dxa), _mm256_mul_ps(dya, dya)));
            let db = _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(dxb, dxb), _mm256_mul_ps(dyb, dyb)));
            let d1 = _mm256_and_ps(_mm256_sub_ps(da, db), abs);
            // not greater than 15: ≤ 15 or NaN
            let mut bits = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(d1, fifteen)) as usize;
            if n - k < 8 {
                bits &= (1 << (n - k)) - 1;
            }
            // SAFETY: COMPRESS rows are 8 u32 = 32 bytes
            let perm = unsafe { _mm256_loadu_si256(COMPRESS[bits].as_ptr().cast()) };
            let kv = _mm256_add_epi32(_mm256_set1_epi32(k as i32), step);
            // SAFETY: len ≤ the pairs kept so far < n(n-1)/2, and the arrays hold SPARE = 8
            // more: eight entries from `len` are in bounds
            unsafe {
                _mm256_storeu_ps(sv.d1.as_mut_ptr().add(len), _mm256_permutevar8x32_ps(d1, perm));
                _mm256_storeu_si256(sv.k.as_mut_ptr().add(len).cast(), _mm256_permutevar8x32_epi32(kv, perm));
                _mm256_storeu_si256(sv.t.as_mut_ptr().add(len).cast(), tv);
            }
            len += bits.count_ones() as usize;
            k += 8;
        }
    }
    sv.len = len;
}

/// [`N_REL`] relaxation steps on `lam` (n ≤ 64 initial λ in, final λ out) with ρ the
/// dense n × n matrix `rho` ([`SPARE`] entries after it), all rows at once: eight rows per
/// register, every row's sum kept in registers over the n columns, each term a multiply
/// then an add in column order from zero, so the bits are the scalar loop's.
#[target_feature(enable = "avx2")]
pub(super) fn relax_avx2(rho: &[f32], n: usize, lam: &mut [f32]) {
    assert!(n <= MAX_NR && lam.len() == n && rho.len() >= n * n + SPARE);
    match n.div_ceil(8) {
        1 => relax_groups::<1>(rho, n, lam),
        2 => relax_groups::<2>(rho, n, lam),
        3 => relax_groups::<3>(rho, n, lam),
        4 => relax_groups::<4>(rho, n, lam),
        5 => relax_groups::<5>(rho, n, lam),
        6 => relax_groups::<6>(rho, n, lam),
        7 => relax_groups::<7>(rho, n, lam),
        _ => relax_groups::<8>(rho, n, lam),
    }
}

/// [`relax_avx2`] for `G` = ⌈n / 8⌉ registers of row sums.
#[target_feature(enable = "avx2")]
#[inline]
fn relax_groups<const G: usize>(rho: &[f32], n: usize, lam: &mut [f32]) {
    debug_assert!(G * 8 >= n && G * 8 < n + 8 && rho.len() >= n * n + SPARE);
    let mut cur = [0f32; MAX_NR];
    cur[..n].copy_from_slice(lam);
    let (w, inv) = (_mm256_set1_ps(W_R), _mm256_set1_ps(1.0 - W_R));
    let div = _mm256_set1_ps((n - 1) as f32);
    for _ in 0..N_REL {
        let mut acc = [_mm256_setzero_ps(); G];
        for (k, &lk) in cur[..n].iter().enumerate() {
            let lk = _mm256_set1_ps(lk);
            for (g, a) in acc.iter_mut().enumerate() {
                // SAFETY: k * n + 8 * g + 8 ≤ (n - 1) * n + n + 7 < n * n + SPARE; lanes past
                // the row's n columns read the next row (or the spare zeros) and only feed
                // row sums ≥ n, which are dropped
                let r = unsafe { _mm256_loadu_ps(rho.as_ptr().add(k * n + 8 * g)) };
                *a = _mm256_add_ps(*a, _mm256_mul_ps(r, lk));
            }
        }
        let mut next = [0f32; MAX_NR];
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: 8 * g + 8 ≤ 8 * G ≤ MAX_NR: inside `cur` and `next`
            unsafe {
                let l = _mm256_loadu_ps(cur.as_ptr().add(8 * g));
                let v = _mm256_add_ps(_mm256_mul_ps(w, l), _mm256_div_ps(_mm256_mul_ps(inv, *a), div));
                _mm256_storeu_ps(next.as_mut_ptr().add(8 * g), v);
            }
        }
        // rows ≥ n hold garbage from the lanes past each row; they are never read as λ
        cur = next;
    }
    lam.copy_from_slice(&cur[..n]);
}

/// [`max_key`] with AVX2: a signed 64-bit compare orders keys below 2^63.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn max_key_avx2(keys: &[u64], mask: Option<&[u64]>) -> u64 {
    let n = keys.len();
    assert!(mask.is_none_or(|f| f.len() >= n));
    let mut best = _mm256_setzero_si256();
    let mut c = 0;
    while c + 4 <= n {
        // SAFETY: c + 4 <= n <= keys.len() (and the mask's length, asserted above)
        let mut v = unsafe { _mm256_loadu_si256(keys.as_ptr().add(c).cast()) };
        if let Some(f) = mask {
            // SAFETY: as above
            v = _mm256_and_si256(v, unsafe { _mm256_loadu_si256(f.as_ptr().add(c).cast()) });
        }
        best = _mm256_blendv_epi8(best, v, _mm256_cmpgt_epi64(v, best));
        c += 4;
    }
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` is 32 writable bytes
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), best) };
    let tail = keys[c..].iter().enumerate().map(|(t, &x)| x & mask.map_or(!0, |f| f[c + t]));
    lanes.into_iter().chain(tail).max().unwrap_or(0)
}
