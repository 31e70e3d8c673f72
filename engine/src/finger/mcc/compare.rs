//! One comparison (LSS-R): the local similarity matrix, the greedy choice of relaxation
//! pairs, ρ between pairs, relaxation and the consolidated score. `SIMD` selects the AVX2
//! kernels of [`super::avx2`] for its inner loops; the result is the same bits either way.

#[cfg(target_arch = "x86_64")]
use super::avx2::{keys_avx2, max_key_avx2, near_pairs_avx2, relax_avx2, sigmoids_avx2};
use super::geometry::{dphi, fast_atan2, sigmoid};
use super::local::{dir_window, row_keys};
use super::{MAX_NP, MAX_NR, MIN_NP, MU_P, MU1, MU2, MU3, MccTemplate, N_REL, PAD, TAU_P, TAU1, TAU2, TAU3, W_R};

/// Spare entries after the per-pair arrays of a comparison, for the AVX2 passes that load
/// or store eight lanes at a time past the last entry.
pub(super) const SPARE: usize = 8;

/// d1 of relaxation pairs `t` and `k`: how much the distance between their minutiae in `a`
/// differs from the distance in `b` (`px`: x, y in `a`, x, y in `b`).
#[inline(always)]
pub(super) fn pair_d1(px: &[Vec<f32>; 4], t: usize, k: usize) -> f32 {
    let (dxa, dya) = (px[0][k] - px[0][t], px[1][k] - px[1][t]);
    let (dxb, dyb) = (px[2][k] - px[2][t], px[3][k] - px[3][t]);
    // sqrt of the sum, not hypot: no overflow is possible at these magnitudes and libm's
    // hypotf was 7 % of the comparison time
    ((dxa * dxa + dya * dya).sqrt() - (dxb * dxb + dyb * dyb).sqrt()).abs()
}

/// Per-thread buffers of one comparison, reused so a comparison allocates nothing.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) gamma: Vec<u64>,
    pub(super) row_max: Vec<u64>,
    pub(super) free: Vec<u64>,
    pub(super) pairs: Vec<(f32, usize, usize)>,
    pub(super) rho: Vec<f32>,
    /// x, y in `a`, x, y in `b` of the pairs' minutiae, one array each.
    pub(super) px: [Vec<f32>; 4],
    pub(super) acc: Vec<f32>,
    pub(super) near: NearPairs,
    pub(super) lambda0: Vec<f32>,
    pub(super) lam: Vec<f32>,
    pub(super) next: Vec<f32>,
    pub(super) order: Vec<usize>,
    pub(super) eff: Vec<f32>,
}

/// The pairs of relaxation pairs that pass ρ's distance test, as arrays.
#[derive(Default)]
pub(super) struct NearPairs {
    pub(super) len: usize,
    pub(super) t: Vec<u32>,
    pub(super) k: Vec<u32>,
    pub(super) d1: Vec<f32>,
    /// dx, dy of the segment in `a`, in `b`, then the four minutia directions.
    pub(super) geo: Vec<[f32; 8]>,
    /// d2 of each.
    pub(super) d2: Vec<f32>,
    /// d3 of each.
    pub(super) d3: Vec<f32>,
    /// ρ of each.
    pub(super) r: Vec<f32>,
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
    pub(super) static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Up to `nr` pairs `(λ, i, j)` from the dense key matrix (rows `nb` apart, `row_max`
/// their maxima; the key of `(i, j)` sits in column `col[j]`), best first, each row and
/// column used once: repeatedly the largest key whose row and column are both unused.
/// Row maxima go stale lazily: a maximum whose column was taken is only rescanned (over
/// the free columns) when it comes out on top, which is exact because a stale maximum is
/// never below the row's true one.
/// `row_max` is consumed; `free` is scratch.
#[inline(always)]
pub(super) fn greedy_pairs<const SIMD: bool>(
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
pub(super) fn max_key<const SIMD: bool>(keys: &[u64], mask: Option<&[u64]>) -> u64 {
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

/// The comparison; `WINDOW = false` visits every cylinder pair (the reference the
/// direction window is tested against: both must give bit-identical scores).
#[inline(always)]
pub(super) fn compare<const WINDOW: bool, const SIMD: bool>(a: &MccTemplate, b: &MccTemplate, sc: &mut Scratch) -> f32 {
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
        // SAFETY: `SIMD` is only set by `avx2::similarity_avx2`, which runs after checking that
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
        // SAFETY: `SIMD` is only set by `avx2::similarity_avx2`, which runs after checking that
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
        // SAFETY: `SIMD` is only set by `avx2::similarity_avx2`, which runs after checking that
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
        // SAFETY: `SIMD` is only set by `avx2::similarity_avx2`, which runs after checking that
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
