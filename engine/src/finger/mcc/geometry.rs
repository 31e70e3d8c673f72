//! Angles and the convex hull: the small geometric helpers of cylinder construction and
//! relaxation.

use std::f32::consts::PI;

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
pub(super) fn norm_angle(a: f32) -> f32 {
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
pub(super) fn sigmoid(v: f32, mu: f32, tau: f32) -> f32 {
    1.0 / (1.0 + (-tau * (v - mu)).exp())
}

/// erf, Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7: ample for a 0.01 threshold).
pub(super) fn erf(x: f32) -> f32 {
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
pub(super) fn convex_hull(pts: &[(f32, f32)]) -> Vec<(f32, f32)> {
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
pub(super) fn near_hull(hull: &[(f32, f32)], q: (f32, f32), omega: f32) -> bool {
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
