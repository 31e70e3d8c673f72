//! Local similarity of two cylinders (bit counts to a score, the δθ gate, the packed
//! keys) and the direction window that limits which cylinder pairs are scored: the scalar
//! reference of the AVX2 key kernel.

use std::f32::consts::PI;

use super::{CELLS, DELTA_THETA, MIN_ME, MccTemplate, ND, PLANE_WORDS, WORDS};

/// `sqrt(n)` for every possible bit count of a cylinder.
pub(super) struct SqrtTable(pub(super) [f32; CELLS + 1]);
pub(super) static SQRT_TABLE: SqrtTable = SqrtTable({
    let mut t = [0f32; CELLS + 1];
    let mut i = 0;
    while i <= CELLS {
        t[i] = const_sqrt(i as f32);
        i += 1;
    }
    t
});

/// Newton square root usable in a const initialiser: iterated in f64, then rounded once to
/// f32, which gives the correctly rounded `f32::sqrt` for 0..=384 (checked bit for bit in
/// the tests), so the AVX2 kernel's `vsqrtps` and this table agree.
pub(super) const fn const_sqrt(x: f32) -> f32 {
    if x == 0.0 {
        return 0.0;
    }
    let x = x as f64;
    let mut r = x / 2.0 + 1.0;
    let mut k = 0;
    while k < 30 {
        r = 0.5 * (r + x / r);
        k += 1;
    }
    r as f32
}

/// Local similarity of two cylinders (0 when not comparable), written without branches:
/// the pairs fail the δθ gate at random, and mispredictions cost more than the popcounts.
#[inline(always)]
pub(super) fn local_similarity(
    ca: &[u64; WORDS],
    va: &[u64; PLANE_WORDS],
    cb: &[u64; WORDS],
    vb: &[u64; PLANE_WORDS],
) -> f32 {
    let mut v = [0u64; PLANE_WORDS];
    let mut common = 0u32;
    for w in 0..PLANE_WORDS {
        v[w] = va[w] & vb[w];
        common += v[w].count_ones();
    }
    let (mut na, mut nb, mut nx) = (0u32, 0u32, 0u32);
    #[allow(clippy::modulo_one)] // PLANE_WORDS is 1 for NS = 8, 4 for NS = 16
    for w in 0..WORDS {
        let m = v[w % PLANE_WORDS];
        let x = ca[w] & m;
        let y = cb[w] & m;
        na += x.count_ones();
        nb += y.count_ones();
        nx += (x ^ y).count_ones();
    }
    similarity_of_counts(common, na, nb, nx)
}

/// The local similarity from the bit counts: `common` valid cells in both, `na`/`nb` set
/// cells of each inside them, `nx` cells that differ.
#[inline(always)]
pub(super) fn similarity_of_counts(common: u32, na: u32, nb: u32, nx: u32) -> f32 {
    // comparable: enough cells valid in both (over all direction planes), some bit set
    let ok = (common as usize * ND) >= (MIN_ME * CELLS as f32) as usize && na + nb > 0;
    // counts are ≤ CELLS: square roots from a table (three sqrtss per pair were the
    // largest single cost of the comparison)
    let sq = &SQRT_TABLE.0;
    let l = 1.0 - sq[nx as usize] / (sq[na as usize] + sq[nb as usize]).max(1e-9);
    if ok { l } else { 0.0 }
}

/// Stores the key of local similarity `l` between an `a` cylinder (direction `(ci, si)`,
/// minutia number in `key_hi`) and `b`'s cylinder of direction rank `k` into `row[k]`,
/// 0 when the pair fails the δθ gate or `l` is 0; returns the key.
#[inline(always)]
pub(super) fn put_key(l: f32, (ci, si): (f32, f32), key_hi: u64, b: &MccTemplate, k: usize, row: &mut [u64]) -> u64 {
    // |dφ(θa, θb)| ≤ δθ = π/2  ⇔  cos(θa − θb) ≥ 0
    const _: () = assert!(DELTA_THETA == PI / 2.0);
    let l = if ci * b.dir_cos[k] + si * b.dir_sin[k] >= 0.0 { l } else { 0.0 };
    let j = b.by_dir[k] as u64;
    let key = (((l.to_bits() as u64) << 32) | key_hi | j) & ((l > 0.0) as u64).wrapping_neg();
    row[k] = key;
    key
}

/// Keys of `a`'s cylinder of direction rank `ka` against `b`'s direction ranks `lo..hi`,
/// into `row[lo..hi]` (indexed by `b`'s direction ranks); returns the largest. The
/// scalar reference of [`keys_avx2`].
#[inline(always)]
pub(super) fn row_keys(a: &MccTemplate, ka: usize, b: &MccTemplate, lo: usize, hi: usize, row: &mut [u64]) -> u64 {
    let (ca, va) = (a.cyl(ka), a.valid(ka));
    let key_hi = (a.by_dir[ka] as u64) << 16;
    let mut best = 0;
    for k in lo..hi {
        let l = local_similarity(&ca, &va, &b.cyl(k), &b.valid(k));
        best = best.max(put_key(l, (a.dir_cos[ka], a.dir_sin[ka]), key_hi, b, k, row));
    }
    best
}

/// Slack added to the δθ window when picking candidate cylinders by sorted direction:
/// the exact gate (the cos/sin dot product) still decides, the window only has to
/// contain every cylinder that can pass it.
pub(super) const WINDOW_SLACK: f32 = 1e-3;

/// The first index of sorted `s` where `below` no longer holds (`partition_point`),
/// walked from `hint`: exact from any hint, and cheap when the hint is the previous
/// answer of a slowly moving bound (a binary search's chain of dependent loads and
/// compares cost more than the few steps of the walk).
#[inline(always)]
pub(super) fn boundary_from(s: &[f32], hint: usize, below: impl Fn(f32) -> bool) -> usize {
    let mut p = hint.min(s.len());
    while p < s.len() && below(s[p]) {
        p += 1;
    }
    while p > 0 && !below(s[p - 1]) {
        p -= 1;
    }
    p
}

/// The run `[start, end)` of `b.by_dir` (indices taken modulo its length) holding every
/// cylinder of `b` whose direction is within δθ (plus [`WINDOW_SLACK`]) of `theta`.
/// `hints` carries the three boundaries from one call to the next (the `a` cylinders come
/// in direction order, so they move little); start with zeros.
#[inline(always)]
pub(super) fn dir_window(b: &MccTemplate, theta: f32, hints: &mut [usize; 3]) -> (usize, usize) {
    let nb = b.sorted_theta.len();
    let s = &b.sorted_theta;
    let mut lo = theta - DELTA_THETA - WINDOW_SLACK;
    let mut hi = theta + DELTA_THETA + WINDOW_SLACK;
    if lo <= -PI {
        lo += 2.0 * PI;
        hi += 2.0 * PI;
    }
    // the list is conceptually repeated once with +2π: element k ≥ nb is s[k - nb] + 2π
    let start = boundary_from(s, hints[0], |t| t < lo);
    hints[0] = start;
    let end = if hi <= PI {
        hints[1] = boundary_from(s, hints[1], |t| t <= hi);
        hints[1]
    } else {
        hints[2] = boundary_from(s, hints[2], |t| t + 2.0 * PI <= hi);
        nb + hints[2]
    };
    (start, end.max(start).min(start + nb))
}
