//! Synthetic minutiae templates for tests and 1:N benchmarks: distractor "fingers" and
//! distorted impressions. No image is generated; these exercise the matcher and the
//! index, not the extractor.
//!
//! A synthetic finger is a smooth random ridge-orientation field (a loop-like singular
//! term plus low-frequency waves) over an elliptical print area of a plain impression at
//! 500 ppi, with 30–60 minutiae at least 10 px apart whose directions follow the field
//! (either sense, like real endings and bifurcations). An impression of a finger (real
//! or synthetic) is the template under a random rigid motion (±25°, ±25 px), a smooth
//! non-linear displacement (skin distortion, up to ~6 px), position/angle noise, 15 %
//! missed and 5 % spurious minutiae, and cropping to the sensor area.

use std::f32::consts::PI;

use crate::finger::template::{Minutia, MinutiaKind, Template};

/// Deterministic xorshift64* generator (no `rand` dependency in the engine).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

/// A synthetic finger (one template, 300x400 at 500 ppi) from `seed`.
pub fn finger(seed: u64) -> Template {
    let mut r = Rng::new(seed);
    let (w, h) = (300.0f32, 400.0f32);
    let (cx, cy) = (r.range(100.0, 200.0), r.range(120.0, 280.0));
    let waves: Vec<(f32, f32, f32, f32)> = (0..3)
        .map(|_| (r.range(0.3, 0.8), r.range(-0.02, 0.02), r.range(-0.02, 0.02), r.range(0.0, 2.0 * PI)))
        .collect();
    let loop_gain = r.range(0.2, 0.5);
    let orient = |x: f32, y: f32| {
        let mut o = loop_gain * (y - cy).atan2(x - cx);
        for &(a, fx, fy, ph) in &waves {
            o += a * (fx * x + fy * y + ph).sin();
        }
        o
    };
    let (ex, ey) = (r.range(110.0, 140.0), r.range(150.0, 190.0));
    let n = 30 + (r.next_u64() % 31) as usize;
    let mut minutiae: Vec<Minutia> = Vec::with_capacity(n);
    let mut tries = 0;
    while minutiae.len() < n && tries < 5000 {
        tries += 1;
        let (x, y) = (r.range(0.0, w), r.range(0.0, h));
        if ((x - w / 2.0) / ex).powi(2) + ((y - h / 2.0) / ey).powi(2) > 1.0 {
            continue;
        }
        if minutiae.iter().any(|m| (m.x - x).hypot(m.y - y) < 10.0) {
            continue;
        }
        let sense = if r.unit() < 0.5 { 0.0 } else { PI };
        minutiae.push(Minutia {
            x,
            y,
            angle: wrap(orient(x, y) + sense),
            kind: if r.unit() < 0.6 { MinutiaKind::Ending } else { MinutiaKind::Bifurcation },
            quality: r.range(0.6, 1.0),
        });
    }
    Template { width: w as u32, height: h as u32, ppi: 500.0, quality: 0, minutiae }
}

fn wrap(a: f32) -> f32 {
    let a = a.rem_euclid(2.0 * PI);
    if a > PI { a - 2.0 * PI } else { a }
}

/// A distorted impression of `t` (see the module doc), from `seed`.
pub fn impression(t: &Template, seed: u64) -> Template {
    let mut r = Rng::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let s = if t.ppi > 0.0 { t.ppi / 500.0 } else { 1.0 };
    let phi = r.range(-25.0, 25.0).to_radians();
    let (tx, ty) = (r.range(-25.0, 25.0) * s, r.range(-25.0, 25.0) * s);
    let (cx, cy) = (t.width as f32 / 2.0, t.height as f32 / 2.0);
    let amp = r.range(2.0, 6.0) * s;
    let (f1, f2, p1, p2) = (r.range(0.005, 0.015) / s, r.range(0.005, 0.015) / s, r.range(0.0, 6.3), r.range(0.0, 6.3));
    let mut out = Vec::with_capacity(t.minutiae.len());
    for m in &t.minutiae {
        if r.unit() < 0.15 {
            continue;
        }
        // skin distortion, then rigid motion (counter-clockwise on screen = -phi in y-down)
        let dx = amp * (f1 * m.y + p1).sin();
        let dy = amp * (f2 * m.x + p2).sin();
        let (x, y) = (m.x + dx - cx, m.y + dy - cy);
        let (c, sn) = (phi.cos(), phi.sin());
        let nx = cx + c * x + sn * y + tx + r.range(-2.0, 2.0) * s;
        let ny = cy - sn * x + c * y + ty + r.range(-2.0, 2.0) * s;
        if nx < 0.0 || ny < 0.0 || nx >= t.width as f32 || ny >= t.height as f32 {
            continue;
        }
        out.push(Minutia { x: nx, y: ny, angle: wrap(m.angle + phi + r.range(-0.1, 0.1)), ..*m });
    }
    let spurious = (t.minutiae.len() as f32 * 0.05).round() as usize;
    for _ in 0..spurious {
        out.push(Minutia {
            x: r.range(0.0, t.width as f32),
            y: r.range(0.0, t.height as f32),
            angle: r.range(-PI, PI),
            kind: MinutiaKind::Ending,
            quality: r.range(0.6, 0.8),
        });
    }
    Template { minutiae: out, ..t.clone() }
}
