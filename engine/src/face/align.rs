//! 5-point similarity alignment onto the ArcFace 112×112 template.

use super::image::Bgr;

/// Side of the aligned crop.
pub const SIZE: usize = 112;

/// ArcFace / InsightFace landmark template in the 112×112 crop (image-left eye first).
pub const TEMPLATE: [[f64; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// Least-squares similarity transform (rotation, uniform scale, translation; no
/// reflection) mapping `src` onto `dst` (Umeyama 1991). Returns the 2×3 matrix
/// `[a, -b, tx; b, a, ty]` as `[[a, -b, tx], [b, a, ty]]`.
pub fn umeyama(src: &[[f64; 2]], dst: &[[f64; 2]]) -> [[f64; 3]; 2] {
    let n = src.len() as f64;
    let mean = |p: &[[f64; 2]]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0], y + q[1]));
        [sx / n, sy / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    // In 2-D the similarity has a closed form: with centred points, a = Σ(s·d)/Σ|s|²,
    // b = Σ(s×d)/Σ|s|², the same optimum as the SVD form for proper rotations.
    let (mut dotp, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        dotp += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        var += sx * sx + sy * sy;
    }
    let (a, b) = (dotp / var, cross / var);
    let tx = md[0] - (a * ms[0] - b * ms[1]);
    let ty = md[1] - (b * ms[0] + a * ms[1]);
    [[a, -b, tx], [b, a, ty]]
}

/// Warps `img` into the 112×112 crop given the 5 landmarks: bilinear sampling, black
/// outside the image (like `cv2.warpAffine(..., INTER_LINEAR, BORDER_CONSTANT=0)`).
pub fn align(img: &Bgr, landmarks: &[[f32; 2]; 5]) -> Bgr {
    let src: Vec<[f64; 2]> = landmarks.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let m = umeyama(&src, &TEMPLATE);
    // invert the similarity to map each output pixel back into the source
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let inv = [
        [m[1][1] / det, -m[0][1] / det, (m[0][1] * m[1][2] - m[1][1] * m[0][2]) / det],
        [-m[1][0] / det, m[0][0] / det, (m[1][0] * m[0][2] - m[0][0] * m[1][2]) / det],
    ];
    let mut out = Bgr::zeros(SIZE, SIZE);
    let (w, h) = (img.width as i64, img.height as i64);
    let px = |x: i64, y: i64, c: usize| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h { 0.0 } else { img.at(x as usize, y as usize, c) as f64 }
    };
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (xf, yf) = (x as f64, y as f64);
            let sx = inv[0][0] * xf + inv[0][1] * yf + inv[0][2];
            let sy = inv[1][0] * xf + inv[1][1] * yf + inv[1][2];
            let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            for c in 0..3 {
                let v = (px(x0, y0, c) * (1.0 - fx) + px(x0 + 1, y0, c) * fx) * (1.0 - fy)
                    + (px(x0, y0 + 1, c) * (1.0 - fx) + px(x0 + 1, y0 + 1, c) * fx) * fy;
                out.data[(y * SIZE + x) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Fallback when no face is found: the whole image letterboxed into 112×112.
pub fn letterbox(img: &Bgr) -> Bgr {
    let s = SIZE as f32 / img.width.max(img.height) as f32;
    let (nw, nh) =
        (((img.width as f32 * s).round() as usize).max(1), ((img.height as f32 * s).round() as usize).max(1));
    let r = img.resize_linear(nw, nh);
    let mut out = Bgr::zeros(SIZE, SIZE);
    let (x0, y0) = ((SIZE - nw) / 2, (SIZE - nh) / 2);
    for y in 0..nh {
        let row = &r.data[y * nw * 3..(y + 1) * nw * 3];
        let off = ((y0 + y) * SIZE + x0) * 3;
        out.data[off..off + row.len()].copy_from_slice(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umeyama_recovers_a_known_similarity() {
        let (a, b, tx, ty) = (0.8f64, 0.3f64, 5.0, -7.0);
        let src = [[10.0, 20.0], [40.0, 22.0], [25.0, 35.0], [12.0, 50.0], [38.0, 49.0]];
        let dst: Vec<[f64; 2]> = src.iter().map(|p| [a * p[0] - b * p[1] + tx, b * p[0] + a * p[1] + ty]).collect();
        let m = umeyama(&src, &dst);
        for (got, want) in [m[0][0], m[1][0], m[0][2], m[1][2]].iter().zip([a, b, tx, ty]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn aligning_the_template_itself_is_identity() {
        let mut img = Bgr::zeros(SIZE, SIZE);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i % 251) as u8;
        }
        let lm = TEMPLATE.map(|p| [p[0] as f32, p[1] as f32]);
        let out = align(&img, &lm);
        let diff = img.data.iter().zip(&out.data).filter(|(a, b)| a.abs_diff(**b) > 1).count();
        assert!(diff < 10, "{diff} pixels differ");
    }
}
