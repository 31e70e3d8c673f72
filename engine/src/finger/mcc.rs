//! Minutia Cylinder-Code matcher (Cappelli, Ferrara, Maltoni, "Minutia Cylinder-Code: a
//! new representation and matching technique for fingerprint recognition", IEEE TPAMI
//! 32(12), 2010), bit-based cylinders, Local Similarity Sort with Relaxation (LSS-R).
//!
//! Why MCC and not a Bozorth-style pair table: (1) it is the best-documented local
//! matcher on FVC data (the paper and FVC-onGoing report it ahead of Bozorth3 on every
//! FVC DB, and the NBIS row of `../shared/datasets/fingerprints/README.md` shows Bozorth3
//! weak on FVC2004 DB1); (2) cylinders are fixed-length bit vectors, so the local
//! similarity is AND/XOR/popcount (eight pairs per step with AVX2) — and the
//! same bits feed the 1:N candidate stage (locality-sensitive hashing, Cappelli 2011,
//! see [`crate::finger::index`]); (3) it tolerates the missing/spurious minutiae and the
//! skin distortion of small plain impressions better than global alignment, because it
//! never commits to one rigid alignment, and relaxation then rewards pairs whose
//! *mutual* geometry agrees.
//!
//! Parameters are the paper's (Table 1/2) unless noted, in pixels at 500 ppi.

use std::f32::consts::PI;

use crate::finger::template::Template;

/// Cylinder radius R, pixels.
const R: f32 = 70.0;
/// Spatial cells per side. The paper's default is 16; 8 (its compact "MCC8b" variant)
/// makes a direction plane exactly one u64, cuts memory and time by 4x, and on the FVC
/// B sets here loses nothing measurable (see `docs` in the eval report of the commit).
pub const NS: usize = 8;
/// 64-bit words of one direction plane (and of the spatial validity mask).
pub const PLANE_WORDS: usize = NS * NS / 64;
/// Directional cells.
pub const ND: usize = 6;
/// Cells of one cylinder.
pub const CELLS: usize = NS * NS * ND;
/// 64-bit words of one cylinder.
pub const WORDS: usize = CELLS / 64;
const SIGMA_S: f32 = 28.0 / 3.0;
const SIGMA_D: f32 = 2.0 * PI / 9.0;
const MU_PSI: f32 = 0.01;
/// Convex-hull enlargement Ω for cell validity.
const OMEGA: f32 = 50.0;
/// A cylinder needs this share of valid cells (minVC) …
const MIN_VC: f32 = 0.75;
/// … and at least this many other minutiae within R + 3σS (minM).
const MIN_M: usize = 2;
/// Two cylinders are comparable when this share of cells is valid in both (minME).
const MIN_ME: f32 = 0.60;
/// Largest direction difference between comparable cylinders (δθ).
const DELTA_THETA: f32 = PI / 2.0;
const MIN_NP: f32 = 4.0;
const MAX_NP: f32 = 12.0;
const MU_P: f32 = 20.0;
const TAU_P: f32 = 2.0 / 5.0;
const W_R: f32 = 0.5;
const N_REL: usize = 5;
const MU1: f32 = 5.0;
const TAU1: f32 = -8.0 / 5.0;
const MU2: f32 = PI / 12.0;
const TAU2: f32 = -30.0;
const MU3: f32 = PI / 12.0;
const TAU3: f32 = -30.0;
/// Relaxation considers at most this many pairs (cost is quadratic in it).
const MAX_NR: usize = 64;
/// Spare zero entries after a template's `planes`, `dir_cos`, `dir_sin` and `by_dir`, and
/// spare columns in each row of the comparison's key matrix: the AVX2 kernel's last group
/// of eight cylinders reads and writes up to seven past the end, its extra lanes masked.
const PAD: usize = 7;

/// A template prepared for MCC matching: valid cylinders and their minutiae.
///
/// Per-minutia geometry (`x`, `y`, `theta`) is in minutia order; the cylinders themselves
/// are kept in *direction order* (ascending `theta`, see `by_dir`), so the cylinders of
/// `b` within δθ of a direction are one contiguous (circular) run, and word-major planes,
/// so four neighbouring cylinders' word `w` is one 256-bit load. Only the geometry is
/// public: the layout fields carry the [`PAD`] spare entries the AVX2 kernel reads, so
/// templates come from [`MccTemplate::new`] (or `default()`, empty, never compared).
#[derive(Debug, Clone, Default)]
pub struct MccTemplate {
    /// x of each kept minutia (500 ppi pixels).
    pub x: Vec<f32>,
    /// y of each kept minutia.
    pub y: Vec<f32>,
    /// Direction of each kept minutia, radians.
    pub theta: Vec<f32>,
    /// Cylinder words, direction order, word-major: word `w` of the cylinder of direction
    /// rank `k` is `planes[w * len + k]`; words `0..WORDS` are the cell bits, words
    /// `WORDS..WORDS + PLANE_WORDS` the spatial cell validity (the same for every
    /// direction plane); then [`PAD`] zero words.
    planes: Vec<u64>,
    /// cos of each direction, direction order: the δθ gate is a branch-free dot product
    /// (then [`PAD`] zeros, as `dir_sin` and `by_dir`).
    dir_cos: Vec<f32>,
    /// sin of each direction, direction order.
    dir_sin: Vec<f32>,
    /// Minutia number of each direction rank.
    by_dir: Vec<u16>,
    /// Direction rank of each minutia (the inverse of `by_dir`): the comparison's key
    /// matrix has its columns in direction order, so a run of ranks is one vector store.
    dir_rank: Vec<u16>,
    /// `theta` in direction order (ascending).
    sorted_theta: Vec<f32>,
}

/// Difference of two angles in (-π, π].
#[inline]
pub fn dphi(a: f32, b: f32) -> f32 {
    // selects, not branches: the matcher calls this on random angles, where a branch
    // mispredicts about every fourth time
    let d = a - b;
    let up = if d <= -PI { d + 2.0 * PI } else { d };
    if d > PI { d - 2.0 * PI } else { up }
}

#[inline]
fn norm_angle(a: f32) -> f32 {
    let mut a = a % (2.0 * PI);
    if a <= -PI {
        a += 2.0 * PI
    } else if a > PI {
        a -= 2.0 * PI
    }
    a
}

/// atan2 with |error| < 0.0015 rad (a 3rd-order minimax polynomial on [0, 1]), far below
/// the π/12 scale of the relaxation's angle terms; libm's atan2f was 12 % of the time.
#[inline(always)]
pub fn fast_atan2(y: f32, x: f32) -> f32 {
    // selects only (no early return), so loops over it vectorise; at x = y = 0 the
    // polynomial sees 0/0 = NaN and the last select returns 0
    let (ax, ay) = (x.abs(), y.abs());
    let (mn, mx) = if ax < ay { (ax, ay) } else { (ay, ax) };
    let a = mn / mx;
    let s = a * a;
    let r = ((-0.046_496_475 * s + 0.159_314_22) * s - 0.327_622_77) * s * a + a;
    let r = if ay > ax { std::f32::consts::FRAC_PI_2 - r } else { r };
    let r = if x < 0.0 { PI - r } else { r };
    let r = if y < 0.0 { -r } else { r };
    if mx == 0.0 { 0.0 } else { r }
}

#[inline]
fn sigmoid(v: f32, mu: f32, tau: f32) -> f32 {
    1.0 / (1.0 + (-tau * (v - mu)).exp())
}

/// erf, Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7: ample for a 0.01 threshold).
fn erf(x: f32) -> f32 {
    let s = x.signum();
    let x = x.abs() as f64;
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let y = 1.0
        - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592)
            * t
            * (-x * x).exp();
    s * y as f32
}

/// Convex hull (counter-clockwise, monotone chain) of points.
fn convex_hull(pts: &[(f32, f32)]) -> Vec<(f32, f32)> {
    let mut p: Vec<(f32, f32)> = pts.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0);
    let mut hull: Vec<(f32, f32)> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f32, f32)>> =
            if pass == 0 { Box::new(p.iter()) } else { Box::new(p.iter().rev()) };
        for &q in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0 {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// Is `q` inside the hull or within `omega` of it?
fn near_hull(hull: &[(f32, f32)], q: (f32, f32), omega: f32) -> bool {
    if hull.is_empty() {
        return false;
    }
    let n = hull.len();
    let mut inside = n >= 3;
    let mut best = f32::INFINITY;
    for i in 0..n {
        let a = hull[i];
        let b = hull[(i + 1) % n];
        let (ex, ey) = (b.0 - a.0, b.1 - a.1);
        let (qx, qy) = (q.0 - a.0, q.1 - a.1);
        if ex * qy - ey * qx < 0.0 {
            inside = false;
        }
        let len2 = ex * ex + ey * ey;
        let t = if len2 > 0.0 { ((qx * ex + qy * ey) / len2).clamp(0.0, 1.0) } else { 0.0 };
        let (dx, dy) = (qx - t * ex, qy - t * ey);
        best = best.min(dx * dx + dy * dy);
    }
    inside || best <= omega * omega
}

/// True when cell `cell` (index into a cylinder's bits) lies within the radius R: cells
/// in the corners of the grid are never valid, so they carry no information.
pub fn cell_in_radius(cell: usize) -> bool {
    let sc = cell % (NS * NS);
    let (ii, jj) = (sc % NS, sc / NS);
    let delta_s = 2.0 * R / NS as f32;
    let (u, v) = ((ii as f32 + 0.5 - NS as f32 / 2.0) * delta_s, (jj as f32 + 0.5 - NS as f32 / 2.0) * delta_s);
    u * u + v * v <= R * R
}

impl MccTemplate {
    /// Builds the cylinders of a template (coordinates scaled to 500 ppi first).
    pub fn new(t: &Template) -> Self {
        let m = t.normalized();
        let hull = convex_hull(&m.iter().map(|&(x, y, _)| (x, y)).collect::<Vec<_>>());
        let delta_s = 2.0 * R / NS as f32;
        let delta_d = 2.0 * PI / ND as f32;
        let gs_norm = 1.0 / (SIGMA_S * (2.0 * PI).sqrt());
        let mut out = MccTemplate::default();
        // per kept minutia: cell bits, validity, (cos, sin) of its direction
        #[allow(clippy::type_complexity)]
        let mut cyls: Vec<([u64; WORDS], [u64; PLANE_WORDS], (f32, f32))> = Vec::new();
        for (i, &(x, y, th)) in m.iter().enumerate() {
            let neigh: Vec<usize> =
                (0..m.len()).filter(|&j| j != i && (m[j].0 - x).hypot(m[j].1 - y) <= R + 3.0 * SIGMA_S).collect();
            if neigh.len() < MIN_M {
                continue;
            }
            let (c, s) = (th.cos(), th.sin());
            let mut bits = [0u64; WORDS];
            let mut valid = [0u64; PLANE_WORDS];
            let mut n_valid = 0usize;
            let mut n_inside = 0usize;
            for jj in 0..NS {
                for ii in 0..NS {
                    let (u, v) =
                        ((ii as f32 + 0.5 - NS as f32 / 2.0) * delta_s, (jj as f32 + 0.5 - NS as f32 / 2.0) * delta_s);
                    // cell centre, the grid rotated with the minutia
                    let px = x + c * u - s * v;
                    let py = y + s * u + c * v;
                    if u * u + v * v > R * R {
                        continue;
                    }
                    n_inside += 1;
                    if !near_hull(&hull, (px, py), OMEGA) {
                        continue;
                    }
                    n_valid += 1;
                    let sc = jj * NS + ii;
                    valid[sc / 64] |= 1 << (sc % 64);
                    let mut acc = [0f32; ND];
                    for &j in &neigh {
                        let (mx, my, mth) = m[j];
                        let d = (mx - px).hypot(my - py);
                        if d > 3.0 * SIGMA_S {
                            continue;
                        }
                        let gs = gs_norm * (-(d * d) / (2.0 * SIGMA_S * SIGMA_S)).exp();
                        let dth = dphi(th, mth);
                        for (k, a) in acc.iter_mut().enumerate() {
                            let phik = -PI + (k as f32 + 0.5) * delta_d;
                            let alpha = dphi(phik, dth);
                            let z = SIGMA_D * std::f32::consts::SQRT_2;
                            let gd = 0.5 * (erf((alpha + delta_d / 2.0) / z) - erf((alpha - delta_d / 2.0) / z));
                            *a += gs * gd;
                        }
                    }
                    for (k, &a) in acc.iter().enumerate() {
                        let cell = (k * NS + jj) * NS + ii;
                        if a >= MU_PSI {
                            bits[cell / 64] |= 1 << (cell % 64);
                        }
                    }
                }
            }
            if (n_valid as f32) < MIN_VC * n_inside as f32 {
                continue;
            }
            out.x.push(x);
            out.y.push(y);
            out.theta.push(norm_angle(th));
            // cos/sin of the angle as given (not of the normalised `theta`), as always
            cyls.push((bits, valid, (th.cos(), th.sin())));
        }
        let n = out.x.len();
        let mut by_dir: Vec<u16> = (0..n as u16).collect();
        by_dir.sort_by(|&p, &q| out.theta[p as usize].total_cmp(&out.theta[q as usize]).then(p.cmp(&q)));
        out.planes = vec![0; (WORDS + PLANE_WORDS) * n + PAD];
        for (k, &i) in by_dir.iter().enumerate() {
            let (bits, valid, _) = &cyls[i as usize];
            for (w, &word) in bits.iter().chain(valid).enumerate() {
                out.planes[w * n + k] = word;
            }
        }
        out.sorted_theta = by_dir.iter().map(|&i| out.theta[i as usize]).collect();
        out.dir_cos = by_dir.iter().map(|&i| cyls[i as usize].2.0).collect();
        out.dir_sin = by_dir.iter().map(|&i| cyls[i as usize].2.1).collect();
        out.dir_rank = vec![0; n];
        for (k, &i) in by_dir.iter().enumerate() {
            out.dir_rank[i as usize] = k as u16;
        }
        out.by_dir = by_dir;
        for v in [&mut out.dir_cos, &mut out.dir_sin] {
            v.extend([0.0; PAD]);
        }
        out.by_dir.extend([0; PAD]);
        out
    }

    /// Number of valid cylinders.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True when no cylinder is valid (nothing to match).
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Cell bits of the cylinder of direction rank `k`.
    pub fn cyl(&self, k: usize) -> [u64; WORDS] {
        std::array::from_fn(|w| self.planes[w * self.len() + k])
    }

    /// Spatial validity words of the cylinder of direction rank `k`.
    fn valid(&self, k: usize) -> [u64; PLANE_WORDS] {
        std::array::from_fn(|w| self.planes[(WORDS + w) * self.len() + k])
    }
}

/// `sqrt(n)` for every possible bit count of a cylinder.
struct SqrtTable([f32; CELLS + 1]);
static SQRT_TABLE: SqrtTable = SqrtTable({
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
const fn const_sqrt(x: f32) -> f32 {
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
fn local_similarity(ca: &[u64; WORDS], va: &[u64; PLANE_WORDS], cb: &[u64; WORDS], vb: &[u64; PLANE_WORDS]) -> f32 {
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
fn similarity_of_counts(common: u32, na: u32, nb: u32, nx: u32) -> f32 {
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
fn put_key(l: f32, (ci, si): (f32, f32), key_hi: u64, b: &MccTemplate, k: usize, row: &mut [u64]) -> u64 {
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
fn row_keys(a: &MccTemplate, ka: usize, b: &MccTemplate, lo: usize, hi: usize, row: &mut [u64]) -> u64 {
    let (ca, va) = (a.cyl(ka), a.valid(ka));
    let key_hi = (a.by_dir[ka] as u64) << 16;
    let mut best = 0;
    for k in lo..hi {
        let l = local_similarity(&ca, &va, &b.cyl(k), &b.valid(k));
        best = best.max(put_key(l, (a.dir_cos[ka], a.dir_sin[ka]), key_hi, b, k, row));
    }
    best
}

/// Every key of the comparison (rows of `gamma`, `stride` = `b.len() + PAD` apart) and the
/// row maxima, as [`row_keys`] over each `a` cylinder's direction window (or all of `b`),
/// eight `b` cylinders at a time: the bit counts of four pairs come from 256-bit AND/XOR
/// and a nibble-table popcount (bytes summed over the six words, then one `vpsadbw` per
/// count); the rest of each pair is the scalar code's IEEE operations in the same order,
/// so the keys are bit for bit those of the scalar path (tested). The last group of a
/// run is masked rather than finished in scalar code: `b`'s arrays carry [`PAD`] spare
/// entries for its loads and `gamma`'s rows [`PAD`] spare columns for its store. One call
/// per comparison, so the constants are set up once and nothing is a function call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn keys_avx2<const WINDOW: bool>(
    a: &MccTemplate,
    b: &MccTemplate,
    gamma: &mut [u64],
    stride: usize,
    row_max: &mut [u64],
) {
    use std::arch::x86_64::*;
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

/// Similarity of two MCC templates in 0..1 (LSS-R).
pub fn similarity(a: &MccTemplate, b: &MccTemplate) -> f32 {
    // The scratch buffers are borrowed here, outside the feature-specific function: the
    // closure of `LocalKey::with` is compiled without the caller's target features.
    SCRATCH.with(|sc| {
        let sc = &mut sc.borrow_mut();
        #[cfg(target_arch = "x86_64")]
        {
            static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            if *AVX2.get_or_init(|| {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("popcnt")
            }) {
                // SAFETY: the CPU has AVX2, FMA and POPCNT (checked at run time just above).
                return unsafe { similarity_avx2(a, b, sc) };
            }
            static POPCNT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            if *POPCNT.get_or_init(|| is_x86_feature_detected!("popcnt")) {
                // SAFETY: the CPU supports POPCNT (checked at run time just above), which
                // is the only feature `similarity_popcnt` is compiled for.
                return unsafe { similarity_popcnt(a, b, sc) };
            }
        }
        similarity_with::<true, false>(a, b, sc)
    })
}

/// [`similarity_with`] compiled with the POPCNT instruction: the baseline x86-64 target
/// has none, and `count_ones` then becomes a ~12-instruction bit trick per word.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn similarity_popcnt(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    similarity_with::<true, false>(a, b, sc)
}

/// [`similarity_with`] with the AVX2 kernels ([`keys_avx2`], [`sigmoids_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,popcnt")]
unsafe fn similarity_avx2(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    similarity_with::<true, true>(a, b, sc)
}

/// glibc's `expf` (sysdeps/ieee754/flt-32/e_expf.c) on four lanes, bit for bit as the
/// FMA variant glibc runs on every CPU with AVX2 and FMA: x·32/ln2 = k + r, 2^(k/32) from a
/// 32-entry table, 2^(r/32) by a degree-3 polynomial, all in double, with the fused
/// multiply-adds where that variant has them. For |x| < 88 (glibc's special-case path for
/// overflow and underflow is not reproduced): the sigmoid arguments stay within ±87.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn expf4(x: std::arch::x86_64::__m128) -> std::arch::x86_64::__m128 {
    use std::arch::x86_64::*;
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sigmoids_avx2(d1: &[f32], d2: &[f32], d3: &[f32], r: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
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

/// Spare entries after the per-pair arrays of a comparison, for the AVX2 passes that load
/// or store eight lanes at a time past the last entry.
const SPARE: usize = 8;

/// d1 of relaxation pairs `t` and `k`: how much the distance between their minutiae in `a`
/// differs from the distance in `b` (`px`: x, y in `a`, x, y in `b`).
#[inline(always)]
fn pair_d1(px: &[Vec<f32>; 4], t: usize, k: usize) -> f32 {
    let (dxa, dya) = (px[0][k] - px[0][t], px[1][k] - px[1][t]);
    let (dxb, dyb) = (px[2][k] - px[2][t], px[3][k] - px[3][t]);
    // sqrt of the sum, not hypot: no overflow is possible at these magnitudes and libm's
    // hypotf was 7 % of the comparison time
    ((dxa * dxa + dya * dya).sqrt() - (dxb * dxb + dyb * dyb).sqrt()).abs()
}

/// For each mask of eight lanes, the kept lanes' numbers in order (the rest 0): a
/// `vpermps` with this row packs the kept lanes to the front.
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn near_pairs_avx2(px: &[Vec<f32>; 4], n: usize, sv: &mut NearPairs) {
    use std::arch::x86_64::*;
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn relax_avx2(rho: &[f32], n: usize, lam: &mut [f32]) {
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn relax_groups<const G: usize>(rho: &[f32], n: usize, lam: &mut [f32]) {
    use std::arch::x86_64::*;
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

/// Per-thread buffers of one comparison, reused so a comparison allocates nothing.
#[derive(Default)]
struct Scratch {
    gamma: Vec<u64>,
    row_max: Vec<u64>,
    free: Vec<u64>,
    pairs: Vec<(f32, usize, usize)>,
    rho: Vec<f32>,
    /// x, y in `a`, x, y in `b` of the pairs' minutiae, one array each.
    px: [Vec<f32>; 4],
    acc: Vec<f32>,
    near: NearPairs,
    lambda0: Vec<f32>,
    lam: Vec<f32>,
    next: Vec<f32>,
    order: Vec<usize>,
    eff: Vec<f32>,
}

/// The pairs of relaxation pairs that pass ρ's distance test, as arrays.
#[derive(Default)]
struct NearPairs {
    len: usize,
    t: Vec<u32>,
    k: Vec<u32>,
    d1: Vec<f32>,
    /// dx, dy of the segment in `a`, in `b`, then the four minutia directions.
    geo: Vec<[f32; 8]>,
    /// d2 of each.
    d2: Vec<f32>,
    /// d3 of each.
    d3: Vec<f32>,
    /// ρ of each.
    r: Vec<f32>,
}

impl NearPairs {
    /// Empties the list, with room for `cap` entries.
    fn clear(&mut self, cap: usize) {
        self.len = 0;
        // spare slots: `push_if` always writes at `len`, `near_pairs_avx2` eight entries
        let cap = cap + SPARE;
        self.t.resize(cap, 0);
        self.k.resize(cap, 0);
        self.d1.resize(cap, 0.0);
        self.geo.resize(cap + 1, [0.0; 8]);
        self.d2.resize(cap + 1, 0.0);
        self.d3.resize(cap + 1, 0.0);
        self.r.resize(cap + 1, 0.0);
    }

    /// Appends `(t, k, d1)` when `keep`, without a branch (the test is a coin flip for
    /// the predictor): the slot at `len` is always written and only counted when kept.
    #[inline(always)]
    fn push_if(&mut self, keep: bool, t: u32, k: u32, d1: f32) {
        self.t[self.len] = t;
        self.k[self.len] = k;
        self.d1[self.len] = d1;
        self.len += keep as usize;
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Slack added to the δθ window when picking candidate cylinders by sorted direction:
/// the exact gate (the cos/sin dot product) still decides, the window only has to
/// contain every cylinder that can pass it.
const WINDOW_SLACK: f32 = 1e-3;

/// The first index of sorted `s` where `below` no longer holds (`partition_point`),
/// walked from `hint`: exact from any hint, and cheap when the hint is the previous
/// answer of a slowly moving bound (a binary search's chain of dependent loads and
/// compares cost more than the few steps of the walk).
#[inline(always)]
fn boundary_from(s: &[f32], hint: usize, below: impl Fn(f32) -> bool) -> usize {
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
fn dir_window(b: &MccTemplate, theta: f32, hints: &mut [usize; 3]) -> (usize, usize) {
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

/// Up to `nr` pairs `(λ, i, j)` from the dense key matrix (rows `nb` apart, `row_max`
/// their maxima; the key of `(i, j)` sits in column `col[j]`), best first, each row and
/// column used once: repeatedly the largest key whose row and column are both unused.
/// Row maxima go stale lazily: a maximum whose column was taken is only rescanned (over
/// the free columns) when it comes out on top, which is exact because a stale maximum is
/// never below the row's true one.
/// `row_max` is consumed; `free` is scratch.
#[inline(always)]
fn greedy_pairs<const SIMD: bool>(
    gamma: &[u64],
    row_max: &mut [u64],
    nb: usize,
    col: &[u16],
    nr: usize,
    free: &mut Vec<u64>,
    pairs: &mut Vec<(f32, usize, usize)>,
) {
    pairs.clear();
    // all ones while column j is free, 0 once taken
    free.clear();
    free.resize(nb, !0);
    while pairs.len() < nr {
        // the row is in the key itself
        let g = max_key::<SIMD>(row_max, None);
        if g == 0 {
            break;
        }
        let (i, j) = (((g >> 16) & 0xFFFF) as usize, (g & 0xFFFF) as usize);
        let c = col[j] as usize;
        if free[c] == 0 {
            row_max[i] = max_key::<SIMD>(&gamma[i * nb..(i + 1) * nb], Some(free));
            continue;
        }
        pairs.push((f32::from_bits((g >> 32) as u32), i, j));
        row_max[i] = 0;
        free[c] = 0;
    }
}

/// The largest of `keys` (each ANDed with `mask`'s word when given), 0 when empty; keys
/// are below 2^63. `SIMD`: AVX2, four at a time (only set where the CPU has it).
#[inline(always)]
fn max_key<const SIMD: bool>(keys: &[u64], mask: Option<&[u64]>) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: `SIMD` is only set by callers that checked the CPU has AVX2.
        return unsafe { max_key_avx2(keys, mask) };
    }
    match mask {
        Some(f) => keys.iter().zip(f).map(|(&x, &f)| x & f).max().unwrap_or(0),
        None => keys.iter().copied().max().unwrap_or(0),
    }
}

/// [`max_key`] with AVX2: a signed 64-bit compare orders keys below 2^63.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn max_key_avx2(keys: &[u64], mask: Option<&[u64]>) -> u64 {
    use std::arch::x86_64::*;
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

/// The comparison; `WINDOW = false` visits every cylinder pair (the reference the
/// direction window is tested against: both must give bit-identical scores).
#[inline(always)]
fn similarity_with<const WINDOW: bool, const SIMD: bool>(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 {
        return 0.0;
    }
    // Local similarities as keys `bits(λ) << 32 | i << 16 | j` in a dense na × nb matrix
    // (row i, column = direction rank of j), 0 where λ = 0: λ ≥ 0, so its f32 bits order
    // like the value, and the keys of distinct pairs are distinct. `row_max` keeps each
    // row's largest key.
    let (gamma, row_max) = (&mut sc.gamma, &mut sc.row_max);
    // PAD spare columns per row: the AVX2 kernel's masked last group stores there
    let stride = nb + PAD;
    gamma.clear();
    gamma.resize(na * stride, 0);
    row_max.clear();
    row_max.resize(na, 0);
    // Only the cylinders of `b` whose direction is near θa are visited (about half), the
    // δθ gate itself stays exact; the window is circular: at most two runs of ranks.
    if SIMD {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `SIMD` is only set by `similarity_avx2`, which runs after checking that
        // the CPU has AVX2, FMA and POPCNT.
        unsafe {
            keys_avx2::<WINDOW>(a, b, gamma, stride, row_max)
        };
    } else {
        let mut hints = [0; 3];
        for ka in 0..na {
            let i = a.by_dir[ka] as usize;
            let row = &mut gamma[i * stride..(i + 1) * stride];
            let (start, end) = if WINDOW { dir_window(b, a.sorted_theta[ka], &mut hints) } else { (0, nb) };
            let first = row_keys(a, ka, b, start, end.min(nb), row);
            row_max[i] = first.max(row_keys(a, ka, b, 0, end.saturating_sub(nb), row));
        }
    }
    let np = (MIN_NP + (sigmoid(na.min(nb) as f32, MU_P, TAU_P) * (MAX_NP - MIN_NP)).round()) as usize;
    // Relaxation pairs: best local similarities, each minutia used once, greedily (ties
    // broken by the larger minutia indices, deterministic). Taking the largest key whose
    // row and column are both unused, again and again, is the same as scanning all keys
    // sorted in descending order, but the greedy pass would read ~90 % of a sorted list:
    // keeping row maxima (a taken column is cleared, and only the rows whose maximum sat
    // in it are rescanned) costs a fraction of the sort.
    let nr = na.min(nb).min(MAX_NR);
    let pairs = &mut sc.pairs;
    greedy_pairs::<SIMD>(gamma, row_max, stride, &b.dir_rank, nr, &mut sc.free, pairs);
    let n = pairs.len();
    if n == 0 {
        return 0.0;
    }
    if n == 1 {
        return pairs[0].0 / np as f32;
    }
    // ρ(t, k): compatibility of pair t and pair k (distances, relative directions, and
    // the angle each minutia makes with the segment joining them). The pairs'
    // coordinates are gathered first so the distance test runs over contiguous arrays
    // (vectorised); the ~20 % of pairs of pairs that pass it are compacted without
    // branches, their angles computed over gathered arrays (vectorised, branch-free
    // atan2 and dφ), and only the sigmoids stay scalar (libm's expf).
    let px = &mut sc.px;
    for v in px.iter_mut() {
        v.clear();
    }
    for &(_, i, j) in pairs.iter() {
        px[0].push(a.x[i]);
        px[1].push(a.y[i]);
        px[2].push(b.x[j]);
        px[3].push(b.y[j]);
    }
    for v in px.iter_mut() {
        // spare zeros: the AVX2 pass loads eight at a time
        v.extend([0.0; SPARE]);
    }
    let rho = &mut sc.rho;
    rho.clear();
    // spare zeros: the AVX2 relaxation loads whole groups of eight of the last row
    rho.resize(n * n + SPARE, 0.0);
    let sv = &mut sc.near;
    sv.clear(n * (n - 1) / 2);
    if SIMD {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `SIMD` is only set by `similarity_avx2`, which runs after checking that
        // the CPU has AVX2.
        unsafe {
            near_pairs_avx2(px, n, sv)
        };
    } else {
        for t in 0..n {
            for k in t + 1..n {
                let d1 = pair_d1(px, t, k);
                // Z(d1 ≥ 15) < 1e-7: incompatible, ρ stays 0
                sv.push_if(d1 <= 15.0 || d1.is_nan(), t as u32, k as u32, d1);
            }
        }
    }
    let m = sv.len;
    for s in 0..m {
        let (t, k) = (sv.t[s] as usize, sv.k[s] as usize);
        let ((_, at, bt), (_, ak, bk)) = (pairs[t], pairs[k]);
        let d = |c: usize| px[c][k] - px[c][t];
        sv.geo[s] = [d(0), d(1), d(2), d(3), a.theta[at], a.theta[ak], b.theta[bt], b.theta[bk]];
    }
    for ((g, d2), d3) in sv.geo[..m].iter().zip(&mut sv.d2[..m]).zip(&mut sv.d3[..m]) {
        let [dxa, dya, dxb, dyb, tat, tak, tbt, tbk] = *g;
        *d2 = dphi(dphi(tat, tak), dphi(tbt, tbk)).abs();
        let ra = dphi(tat, fast_atan2(dya, dxa));
        let rb = dphi(tbt, fast_atan2(dyb, dxb));
        *d3 = dphi(ra, rb).abs();
    }
    #[cfg(target_arch = "x86_64")]
    let done = if SIMD {
        // SAFETY: `SIMD` is only set by `similarity_avx2`, which runs after checking that
        // the CPU has AVX2 and FMA.
        unsafe { sigmoids_avx2(&sv.d1[..m], &sv.d2[..m], &sv.d3[..m], &mut sv.r[..m]) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for s in done..m {
        sv.r[s] = sigmoid(sv.d1[s], MU1, TAU1) * sigmoid(sv.d2[s], MU2, TAU2) * sigmoid(sv.d3[s], MU3, TAU3);
    }
    for s in 0..m {
        let (t, k, r) = (sv.t[s] as usize, sv.k[s] as usize, sv.r[s]);
        rho[t * n + k] = r;
        rho[k * n + t] = r;
    }
    // Relaxation over the dense ρ, all rows at once: each row's sum still adds its terms in
    // column order starting from zero, and a zero term adds +0, so every λ is bit for bit
    // the sequential per-row sum (ρ is symmetric: column k is row k).
    let (lambda0, lam, next, acc) = (&mut sc.lambda0, &mut sc.lam, &mut sc.next, &mut sc.acc);
    lambda0.clear();
    lambda0.extend(pairs.iter().map(|p| p.0));
    lam.clear();
    lam.extend_from_slice(lambda0);
    if SIMD {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `SIMD` is only set by `similarity_avx2`, which runs after checking that
        // the CPU has AVX2; n = pairs.len() ≤ MAX_NR = 64.
        unsafe {
            relax_avx2(rho, n, lam)
        };
    } else {
        next.clear();
        next.resize(n, 0.0);
        for _ in 0..N_REL {
            acc.clear();
            acc.resize(n, 0.0);
            for (k, &lk) in lam.iter().enumerate() {
                for (s, &r) in acc.iter_mut().zip(&rho[k * n..(k + 1) * n]) {
                    *s += r * lk;
                }
            }
            for t in 0..n {
                next[t] = W_R * lam[t] + (1.0 - W_R) * acc[t] / (n - 1) as f32;
            }
            std::mem::swap(lam, next);
        }
    }
    // Efficiency ε = λ_final / λ_initial picks the pairs relaxation supported most.
    let (order, eff) = (&mut sc.order, &mut sc.eff);
    eff.clear();
    eff.extend(lam.iter().zip(lambda0.iter()).map(|(&l, &l0)| l / l0));
    order.clear();
    order.extend(0..n);
    // the comparator gives the same answers as dividing inside it did, so the unstable
    // sort puts ties in the same order as before
    order.sort_unstable_by(|&p, &q| eff[q].total_cmp(&eff[p]));
    let take = np.min(n);
    order[..take].iter().map(|&t| lam[t]).sum::<f32>() / np as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finger::template::{Minutia, MinutiaKind};

    /// A pseudo-random template (xorshift, deterministic).
    fn random_template(seed: u64, n: usize) -> Template {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 10_000) as f32 / 10_000.0
        };
        let minutiae = (0..n)
            .map(|_| Minutia {
                x: 40.0 + next() * 220.0,
                y: 40.0 + next() * 320.0,
                angle: (next() * 2.0 - 1.0) * PI,
                kind: MinutiaKind::Ending,
                quality: 0.8,
            })
            .collect();
        Template { width: 300, height: 400, ppi: 500.0, quality: 0, minutiae }
    }

    /// The same print rotated by `phi` (counter-clockwise on screen) about (150, 200) and shifted.
    fn rotated(t: &Template, phi: f32, dx: f32, dy: f32) -> Template {
        let mut r = t.clone();
        for m in &mut r.minutiae {
            let (x, y) = (m.x - 150.0, m.y - 200.0);
            // counter-clockwise on screen = clockwise in y-down coordinates
            m.x = 150.0 + x * phi.cos() + y * phi.sin() + dx;
            m.y = 200.0 - x * phi.sin() + y * phi.cos() + dy;
            m.angle = norm_angle(m.angle + phi);
        }
        r
    }

    #[test]
    fn rotation_and_translation_do_not_change_the_score_much() {
        let a = random_template(7, 40);
        let same = similarity(&MccTemplate::new(&a), &MccTemplate::new(&rotated(&a, 0.5, 12.0, -9.0)));
        let other = similarity(&MccTemplate::new(&a), &MccTemplate::new(&random_template(99, 40)));
        assert!(same > 0.5, "rotated copy scored {same}");
        assert!(other < 0.1, "unrelated template scored {other}");
    }

    #[test]
    fn resolution_is_normalised_before_matching() {
        let a = random_template(3, 35);
        let mut b = a.clone();
        b.ppi = 1000.0;
        for m in &mut b.minutiae {
            m.x *= 2.0;
            m.y *= 2.0;
        }
        let s = similarity(&MccTemplate::new(&a), &MccTemplate::new(&b));
        assert!(s > 0.9, "{s}");
    }

    #[test]
    fn fast_atan2_is_close_to_libm() {
        for i in 0..3600 {
            let t = i as f32 / 10.0f32.to_degrees().recip() / 10.0;
            let (y, x) = (t.sin() * 3.7, t.cos() * 3.7);
            assert!(dphi(fast_atan2(y, x), y.atan2(x)).abs() < 0.0015, "{t}");
        }
        assert_eq!(fast_atan2(0.0, 0.0), 0.0);
    }

    #[test]
    fn sqrt_table_is_exact() {
        for (i, &v) in SQRT_TABLE.0.iter().enumerate() {
            assert_eq!(v.to_bits(), (i as f32).sqrt().to_bits(), "{i}");
        }
    }

    #[test]
    fn direction_window_gives_the_exhaustive_scores() {
        let mut sc = Scratch::default();
        for seed in 0..60u64 {
            let a = MccTemplate::new(&random_template(seed, 20 + (seed as usize % 40)));
            let b = MccTemplate::new(&rotated(
                &random_template(seed / 2, 25 + (seed as usize % 30)),
                seed as f32 * 0.37,
                5.0,
                -3.0,
            ));
            let fast = similarity_with::<true, false>(&a, &b, &mut sc);
            let exhaustive = similarity_with::<false, false>(&a, &b, &mut sc);
            assert_eq!(fast.to_bits(), exhaustive.to_bits(), "seed {seed}: {fast} vs {exhaustive}");
            assert_eq!(similarity(&a, &b).to_bits(), fast.to_bits());
        }
        // directions at the window's edges and the ±π seam
        let edge = |angles: &[f32]| {
            let minutiae = angles
                .iter()
                .enumerate()
                .map(|(k, &angle)| Minutia {
                    x: 100.0 + 13.0 * (k % 6) as f32,
                    y: 100.0 + 17.0 * (k / 6) as f32,
                    angle,
                    kind: MinutiaKind::Ending,
                    quality: 0.8,
                })
                .collect();
            MccTemplate::new(&Template { width: 300, height: 400, ppi: 500.0, quality: 0, minutiae })
        };
        let h = PI / 2.0;
        let angles: Vec<f32> = [-PI + 1e-6, PI, 0.0, h, -h, h + 1e-4, -h - 1e-4, PI - h, -PI + h, 1.0, -2.5, 3.0]
            .iter()
            .cycle()
            .take(24)
            .enumerate()
            .map(|(k, &t)| if k < 12 { t } else { norm_angle(t + 0.0005) })
            .collect();
        let (a, b) = (edge(&angles), edge(&angles.iter().rev().copied().collect::<Vec<_>>()));
        for ka in 0..a.len() {
            let (start, end) = dir_window(&b, a.sorted_theta[ka], &mut [0; 3]);
            for kb in 0..b.len() {
                let pass = a.dir_cos[ka] * b.dir_cos[kb] + a.dir_sin[ka] * b.dir_sin[kb] >= 0.0;
                let inside = (start..end).any(|k| k % b.len() == kb);
                assert!(!pass || inside, "cylinder {kb} passes the gate for {ka} but is outside the window");
            }
        }
        assert_eq!(
            similarity_with::<true, false>(&a, &b, &mut sc).to_bits(),
            similarity_with::<false, false>(&a, &b, &mut sc).to_bits()
        );
    }

    #[test]
    fn walked_boundary_is_the_partition_point_from_any_hint() {
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        for case in 0..500 {
            let n = rnd() as usize % 40;
            // few distinct values: ties at the bound are common
            let mut s: Vec<f32> = (0..n).map(|_| (rnd() % 9) as f32 * 0.5 - 2.0).collect();
            s.sort_by(f32::total_cmp);
            let bound = (rnd() % 11) as f32 * 0.5 - 2.5;
            let hint = rnd() as usize % (n + 3);
            assert_eq!(boundary_from(&s, hint, |t| t < bound), s.partition_point(|&t| t < bound), "case {case}");
            assert_eq!(boundary_from(&s, hint, |t| t <= bound), s.partition_point(|&t| t <= bound), "case {case}");
        }
    }

    #[test]
    fn greedy_pairing_is_the_scan_of_the_sorted_keys() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for case in 0..300 {
            let (na, nb) = (1 + rnd() as usize % 70, 1 + rnd() as usize % 70);
            let nr = na.min(nb).min(MAX_NR);
            // sparse positives with many equal λ, as the local similarities have
            let gamma: Vec<u64> = (0..na * nb)
                .map(|c| {
                    let l = if rnd() % 3 == 0 { (rnd() % 40) as f32 / 40.0 } else { 0.0 };
                    (((l.to_bits() as u64) << 32) | (((c / nb) as u64) << 16) | (c % nb) as u64)
                        & ((l > 0.0) as u64).wrapping_neg()
                })
                .collect();
            let mut sorted: Vec<u64> = gamma.iter().copied().filter(|&g| g != 0).collect();
            sorted.sort_unstable_by(|x, y| y.cmp(x));
            let (mut used_a, mut used_b, mut want) = (vec![false; na], vec![false; nb], Vec::new());
            for g in sorted {
                let (i, j) = (((g >> 16) & 0xFFFF) as usize, (g & 0xFFFF) as usize);
                if !used_a[i] && !used_b[j] && want.len() < nr {
                    (used_a[i], used_b[j]) = (true, true);
                    want.push((f32::from_bits((g >> 32) as u32), i, j));
                }
            }
            let mut row_max: Vec<u64> = gamma.chunks(nb).map(|r| r.iter().copied().max().unwrap()).collect();
            let mut got = Vec::new();
            let col: Vec<u16> = (0..nb as u16).collect();
            greedy_pairs::<false>(&gamma, &mut row_max, nb, &col, nr, &mut Vec::new(), &mut got);
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                let mut row_max: Vec<u64> = gamma.chunks(nb).map(|r| r.iter().copied().max().unwrap()).collect();
                let mut simd = Vec::new();
                greedy_pairs::<true>(&gamma, &mut row_max, nb, &col, nr, &mut Vec::new(), &mut simd);
                assert_eq!(simd, want, "case {case}: {na} x {nb}, AVX2");
            }
            assert_eq!(got, want, "case {case}: {na} x {nb}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernel_gives_the_scalar_scores() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("popcnt"))
        {
            eprintln!("no AVX2 + FMA here: nothing to compare");
            return;
        }
        let mut sc = Scratch::default();
        for seed in 0..80u64 {
            // sizes around the 4-wide groups and the wrap of the direction window
            let a = MccTemplate::new(&random_template(seed, 3 + (seed as usize % 61)));
            let b = MccTemplate::new(&rotated(&random_template(seed / 3, 5 + (seed as usize * 7 % 53)), 0.2, 4.0, 1.0));
            let scalar = similarity_with::<true, false>(&a, &b, &mut sc);
            // SAFETY: AVX2 and POPCNT checked above
            let simd = unsafe { similarity_avx2(&a, &b, &mut sc) };
            assert_eq!(scalar.to_bits(), simd.to_bits(), "seed {seed}: {scalar} vs {simd}");
            let (gs, gv) = (sc.gamma.clone(), sc.row_max.clone());
            let _ = similarity_with::<true, false>(&a, &b, &mut sc);
            assert_eq!(sc.gamma.len(), gs.len());
            assert_eq!(sc.row_max, gv, "seed {seed}: row maxima differ");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_expf_is_libm_expf_bit_for_bit() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("no AVX2 + FMA here: nothing to compare");
            return;
        }
        use std::arch::x86_64::*;
        // a fine grid over the arguments the sigmoids produce, then every f32 pattern in
        // a few narrow ranges (rounding boundaries of the table index)
        let grid = (0..400_000).map(|i| -87.5 + i as f32 * 175.0 / 400_000.0);
        let dense = [0.0f32, 1.0, -8.0, 30.0, 86.0].into_iter().flat_map(|c| {
            let b = c.to_bits();
            (b.saturating_sub(3000)..b + 3000).map(f32::from_bits)
        });
        let xs: Vec<f32> = grid.chain(dense).filter(|x| x.abs() < 87.9).collect();
        for x in xs.chunks_exact(4) {
            // SAFETY: AVX2 and FMA checked above; 4 floats read, 4 written
            let got = unsafe {
                let mut out = [0f32; 4];
                _mm_storeu_ps(out.as_mut_ptr(), expf4(_mm_loadu_ps(x.as_ptr())));
                out
            };
            for (v, g) in x.iter().zip(got) {
                assert_eq!(g.to_bits(), v.exp().to_bits(), "expf({v})");
            }
        }
    }

    #[test]
    fn empty_templates_score_zero() {
        let e = Template { width: 10, height: 10, ppi: 500.0, quality: 0, minutiae: vec![] };
        assert_eq!(similarity(&MccTemplate::new(&e), &MccTemplate::new(&random_template(1, 30))), 0.0);
    }
}
