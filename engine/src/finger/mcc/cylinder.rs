//! Cylinder construction: each minutia's neighbourhood as fixed-length cell bits, kept in
//! direction order and word-major planes for the comparison kernels.

use std::f32::consts::PI;

use super::geometry::{convex_hull, dphi, erf, near_hull, norm_angle};
use super::{MIN_M, MIN_VC, MU_PSI, MccTemplate, ND, NS, OMEGA, PAD, PLANE_WORDS, R, SIGMA_D, SIGMA_S, WORDS};
use crate::finger::template::Template;

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
    pub(super) fn valid(&self, k: usize) -> [u64; PLANE_WORDS] {
        std::array::from_fn(|w| self.planes[(WORDS + w) * self.len() + k])
    }
}
