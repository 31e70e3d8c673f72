//! Minutia Cylinder-Code matcher (Cappelli, Ferrara, Maltoni, "Minutia Cylinder-Code: a
//! new representation and matching technique for fingerprint recognition", IEEE TPAMI
//! 32(12), 2010), bit-based cylinders, Local Similarity Sort with Relaxation (LSS-R).
//!
//! Why MCC and not a Bozorth-style pair table: (1) it is the best-documented local
//! matcher on FVC data (the paper and FVC-onGoing report it ahead of Bozorth3 on every
//! FVC DB, and the NBIS row of `../shared/datasets/fingerprints/README.md` shows Bozorth3
//! weak on FVC2004 DB1); (2) cylinders are fixed-length bit vectors, so the local
//! similarity is AND/XOR/popcount — fast enough for ≥ 50k comparisons/s/core — and the
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

/// A template prepared for MCC matching: valid cylinders and their minutiae.
#[derive(Debug, Clone, Default)]
pub struct MccTemplate {
    /// x of each kept minutia (500 ppi pixels).
    pub x: Vec<f32>,
    /// y of each kept minutia.
    pub y: Vec<f32>,
    /// Direction of each kept minutia, radians.
    pub theta: Vec<f32>,
    /// Cell bits of each kept minutia's cylinder.
    pub bits: Vec<[u64; WORDS]>,
    /// `PLANE_WORDS` words of spatial cell validity per kept minutia (the same for every
    /// direction plane).
    pub valid: Vec<[u64; PLANE_WORDS]>,
    /// (cos, sin) of each direction: the δθ gate becomes a branch-free dot product.
    pub dir: Vec<(f32, f32)>,
    /// Cylinder numbers sorted by direction (`theta`), so the cylinders within δθ of a
    /// given direction are one circular run of this list.
    pub by_dir: Vec<u16>,
    /// `theta` in the order of `by_dir` (ascending).
    pub sorted_theta: Vec<f32>,
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
    let (ax, ay) = (x.abs(), y.abs());
    let (mn, mx) = if ax < ay { (ax, ay) } else { (ay, ax) };
    if mx == 0.0 {
        return 0.0;
    }
    let a = mn / mx;
    let s = a * a;
    let mut r = ((-0.046_496_475 * s + 0.159_314_22) * s - 0.327_622_77) * s * a + a;
    if ay > ax {
        r = std::f32::consts::FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 { -r } else { r }
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
            out.bits.push(bits);
            out.valid.push(valid);
            out.dir.push((th.cos(), th.sin()));
        }
        let mut by_dir: Vec<u16> = (0..out.len() as u16).collect();
        by_dir.sort_by(|&p, &q| out.theta[p as usize].total_cmp(&out.theta[q as usize]).then(p.cmp(&q)));
        out.sorted_theta = by_dir.iter().map(|&k| out.theta[k as usize]).collect();
        out.by_dir = by_dir;
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

    /// Cell bits of cylinder `i`.
    pub fn cyl(&self, i: usize) -> &[u64; WORDS] {
        &self.bits[i]
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

/// Newton square root usable in a const initialiser (exact to f32 rounding for 0..=384
/// after 20 iterations from x/2 + 1; checked against `f32::sqrt` in the tests).
const fn const_sqrt(x: f32) -> f32 {
    if x == 0.0 {
        return 0.0;
    }
    let mut r = x / 2.0 + 1.0;
    let mut k = 0;
    while k < 20 {
        r = 0.5 * (r + x / r);
        k += 1;
    }
    r
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
    // comparable: enough cells valid in both (over all direction planes), some bit set
    let ok = (common as usize * ND) >= (MIN_ME * CELLS as f32) as usize && na + nb > 0;
    // counts are ≤ CELLS: square roots from a table (three sqrtss per pair were the
    // largest single cost of the comparison)
    let sq = &SQRT_TABLE.0;
    let l = 1.0 - sq[nx as usize] / (sq[na as usize] + sq[nb as usize]).max(1e-9);
    if ok { l } else { 0.0 }
}

/// Similarity of two MCC templates in 0..1 (LSS-R).
pub fn similarity(a: &MccTemplate, b: &MccTemplate) -> f32 {
    // The scratch buffers are borrowed here, outside the feature-specific function: the
    // closure of `LocalKey::with` is compiled without the caller's target features.
    SCRATCH.with(|sc| {
        let sc = &mut sc.borrow_mut();
        #[cfg(target_arch = "x86_64")]
        {
            static POPCNT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            if *POPCNT.get_or_init(|| std::arch::is_x86_feature_detected!("popcnt")) {
                // SAFETY: the CPU supports POPCNT (checked at run time just above), which
                // is the only feature `similarity_popcnt` is compiled for.
                return unsafe { similarity_popcnt(a, b, sc) };
            }
        }
        similarity_with::<true>(a, b, sc)
    })
}

/// [`similarity_with`] compiled with the POPCNT instruction: the baseline x86-64 target
/// has none, and `count_ones` then becomes a ~12-instruction bit trick per word.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn similarity_popcnt(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    similarity_with::<true>(a, b, sc)
}

/// Per-thread buffers of one comparison, reused so a comparison allocates nothing.
#[derive(Default)]
struct Scratch {
    gamma: Vec<u64>,
    row_max: Vec<u64>,
    pairs: Vec<(f32, usize, usize)>,
    rho: Vec<f32>,
    px: Vec<[f32; 4]>,
    d1: Vec<f32>,
    acc: Vec<f32>,
    lambda0: Vec<f32>,
    lam: Vec<f32>,
    next: Vec<f32>,
    order: Vec<usize>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Slack added to the δθ window when picking candidate cylinders by sorted direction:
/// the exact gate (the cos/sin dot product) still decides, the window only has to
/// contain every cylinder that can pass it.
const WINDOW_SLACK: f32 = 1e-3;

/// The run `[start, end)` of `b.by_dir` (indices taken modulo its length) holding every
/// cylinder of `b` whose direction is within δθ (plus [`WINDOW_SLACK`]) of `theta`.
#[inline(always)]
fn dir_window(b: &MccTemplate, theta: f32) -> (usize, usize) {
    let nb = b.sorted_theta.len();
    let s = &b.sorted_theta;
    let mut lo = theta - DELTA_THETA - WINDOW_SLACK;
    let mut hi = theta + DELTA_THETA + WINDOW_SLACK;
    if lo <= -PI {
        lo += 2.0 * PI;
        hi += 2.0 * PI;
    }
    // the list is conceptually repeated once with +2π: element k ≥ nb is s[k - nb] + 2π
    let start = s.partition_point(|&t| t < lo);
    let end = if hi <= PI { s.partition_point(|&t| t <= hi) } else { nb + s.partition_point(|&t| t + 2.0 * PI <= hi) };
    (start, end.max(start).min(start + nb))
}

/// Up to `nr` pairs `(λ, i, j)` from the dense key matrix (`nb` columns, `row_max` its
/// row maxima), best first, each row and column used once: repeatedly the largest key
/// whose row and column are both unused. `gamma` and `row_max` are consumed.
#[inline(always)]
fn greedy_pairs(gamma: &mut [u64], row_max: &mut [u64], nb: usize, nr: usize, pairs: &mut Vec<(f32, usize, usize)>) {
    pairs.clear();
    while pairs.len() < nr {
        // the row is in the key itself
        let g = row_max.iter().copied().max().unwrap_or(0);
        if g == 0 {
            break;
        }
        let (i, j) = (((g >> 16) & 0xFFFF) as usize, (g & 0xFFFF) as usize);
        pairs.push((f32::from_bits((g >> 32) as u32), i, j));
        row_max[i] = 0;
        for (r, m) in row_max.iter_mut().enumerate() {
            gamma[r * nb + j] = 0;
            if *m != 0 && (*m & 0xFFFF) as usize == j {
                *m = gamma[r * nb..(r + 1) * nb].iter().copied().max().unwrap_or(0);
            }
        }
    }
}

/// The comparison; `WINDOW = false` visits every cylinder pair (the reference the
/// direction window is tested against: both must give bit-identical scores).
#[inline(always)]
fn similarity_with<const WINDOW: bool>(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 {
        return 0.0;
    }
    // Local similarities as keys `bits(λ) << 32 | i << 16 | j` in a dense na × nb matrix,
    // 0 where λ = 0: λ ≥ 0, so its f32 bits order like the value, and the keys of distinct
    // pairs are distinct. `row_max` keeps each row's largest key.
    let (gamma, row_max) = (&mut sc.gamma, &mut sc.row_max);
    gamma.clear();
    gamma.resize(na * nb, 0);
    row_max.clear();
    // |dφ(θa, θb)| ≤ δθ = π/2  ⇔  cos(θa − θb) ≥ 0; only the cylinders of `b` whose
    // direction is near θa are visited (about half), the gate itself stays exact.
    const _: () = assert!(DELTA_THETA == PI / 2.0);
    for i in 0..na {
        let (ca, va, (ci, si)) = (&a.bits[i], &a.valid[i], a.dir[i]);
        let (start, end) = if WINDOW { dir_window(b, a.theta[i]) } else { (0, nb) };
        let row = &mut gamma[i * nb..(i + 1) * nb];
        let mut best = 0u64;
        for k in start..end {
            let j = if WINDOW { b.by_dir[if k >= nb { k - nb } else { k }] as usize } else { k };
            let (cj, sj) = b.dir[j];
            let l = local_similarity(ca, va, &b.bits[j], &b.valid[j]);
            let l = if ci * cj + si * sj >= 0.0 { l } else { 0.0 };
            let key =
                (((l.to_bits() as u64) << 32) | ((i as u64) << 16) | j as u64) & ((l > 0.0) as u64).wrapping_neg();
            row[j] = key;
            best = best.max(key);
        }
        row_max.push(best);
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
    greedy_pairs(gamma, row_max, nb, nr, pairs);
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
    // (vectorised); only pairs that pass it reach the trigonometry.
    let (px, d1s) = (&mut sc.px, &mut sc.d1);
    px.clear();
    px.extend(pairs.iter().map(|&(_, i, j)| [a.x[i], a.y[i], b.x[j], b.y[j]]));
    let rho = &mut sc.rho;
    rho.clear();
    rho.resize(n * n, 0.0);
    for t in 0..n {
        let (_, at, bt) = pairs[t];
        let [xat, yat, xbt, ybt] = px[t];
        d1s.clear();
        // sqrt of the sum, not hypot: no overflow is possible at these magnitudes and
        // libm's hypotf was 7 % of the comparison time.
        d1s.extend(px[t + 1..].iter().map(|&[xak, yak, xbk, ybk]| {
            let (dxa, dya) = (xak - xat, yak - yat);
            let (dxb, dyb) = (xbk - xbt, ybk - ybt);
            ((dxa * dxa + dya * dya).sqrt() - (dxb * dxb + dyb * dyb).sqrt()).abs()
        }));
        for (k, &d1) in (t + 1..n).zip(d1s.iter()) {
            if d1 > 15.0 {
                // Z(d1 ≥ 15) < 1e-7: incompatible, skip the trigonometry
                continue;
            }
            let (_, ak, bk) = pairs[k];
            let [xak, yak, xbk, ybk] = px[k];
            let (dxa, dya) = (xak - xat, yak - yat);
            let (dxb, dyb) = (xbk - xbt, ybk - ybt);
            let d2 = dphi(dphi(a.theta[at], a.theta[ak]), dphi(b.theta[bt], b.theta[bk])).abs();
            let ra = dphi(a.theta[at], fast_atan2(dya, dxa));
            let rb = dphi(b.theta[bt], fast_atan2(dyb, dxb));
            let d3 = dphi(ra, rb).abs();
            let r = sigmoid(d1, MU1, TAU1) * sigmoid(d2, MU2, TAU2) * sigmoid(d3, MU3, TAU3);
            rho[t * n + k] = r;
            rho[k * n + t] = r;
        }
    }
    // Relaxation over the dense ρ, all rows at once (8 lanes): each row's sum still adds
    // its terms in column order starting from zero, and a zero term adds +0, so every λ is
    // bit for bit the sequential per-row sum (ρ is symmetric: column k is row k).
    let (lambda0, lam, next, acc) = (&mut sc.lambda0, &mut sc.lam, &mut sc.next, &mut sc.acc);
    lambda0.clear();
    lambda0.extend(pairs.iter().map(|p| p.0));
    lam.clear();
    lam.extend_from_slice(lambda0);
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
    // Efficiency ε = λ_final / λ_initial picks the pairs relaxation supported most.
    let order = &mut sc.order;
    order.clear();
    order.extend(0..n);
    order.sort_unstable_by(|&p, &q| (lam[q] / lambda0[q]).total_cmp(&(lam[p] / lambda0[p])));
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
            assert!((v - (i as f32).sqrt()).abs() <= 1e-6 * v.max(1.0), "{i}");
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
            let fast = similarity_with::<true>(&a, &b, &mut sc);
            let exhaustive = similarity_with::<false>(&a, &b, &mut sc);
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
        for i in 0..a.len() {
            let (start, end) = dir_window(&b, a.theta[i]);
            for j in 0..b.len() {
                let pass = a.dir[i].0 * b.dir[j].0 + a.dir[i].1 * b.dir[j].1 >= 0.0;
                let inside = (start..end).any(|k| b.by_dir[k % b.len()] as usize == j);
                assert!(!pass || inside, "cylinder {j} passes the gate for {i} but is outside the window");
            }
        }
        assert_eq!(
            similarity_with::<true>(&a, &b, &mut sc).to_bits(),
            similarity_with::<false>(&a, &b, &mut sc).to_bits()
        );
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
            greedy_pairs(&mut gamma.clone(), &mut row_max, nb, nr, &mut got);
            assert_eq!(got, want, "case {case}: {na} x {nb}");
        }
    }

    #[test]
    fn empty_templates_score_zero() {
        let e = Template { width: 10, height: 10, ppi: 500.0, quality: 0, minutiae: vec![] };
        assert_eq!(similarity(&MccTemplate::new(&e), &MccTemplate::new(&random_template(1, 30))), 0.0);
    }
}
