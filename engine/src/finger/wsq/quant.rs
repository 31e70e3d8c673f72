//! Dequantisation (NBIS util.c `unquantize`): coefficients back to bin centres.

use super::tables::Dqt;
use super::tree::QNode;
use super::{MAX_SUBBANDS, NUM_SUBBANDS, bad};
use crate::error::Result;

/// Places the quantised coefficients of the 60 coded subbands in a float image and maps
/// each back to the centre of its bin (NBIS `unquantize`).
pub(super) fn unquantize(
    dqt: &Dqt,
    q: &[QNode; MAX_SUBBANDS],
    coeffs: &[i16],
    width: usize,
    height: usize,
) -> Result<Vec<f32>> {
    let expected: usize = (0..NUM_SUBBANDS)
        .filter(|&b| dqt.q_bin[b] != 0.0)
        .map(|b| q[b].lenx.max(0) as usize * q[b].leny.max(0) as usize)
        .sum();
    if coeffs.len() < expected {
        return Err(bad(format!("the data ends after {} of the {expected} coefficients", coeffs.len())));
    }
    let mut img = vec![0f32; width * height];
    let c = dqt.bin_center;
    let mut s = coeffs.iter();
    for (band, n) in q.iter().enumerate().take(NUM_SUBBANDS) {
        let (qb, zb) = (dqt.q_bin[band], dqt.z_bin[band]);
        if qb == 0.0 {
            continue;
        }
        for row in 0..n.leny.max(0) as usize {
            let start = (n.y as usize + row) * width + n.x as usize;
            let line = img
                .get_mut(start..start + n.lenx.max(0) as usize)
                .ok_or_else(|| bad(format!("subband {band} lies outside the {width}x{height} image")))?;
            for px in line {
                let v = *s.next().ok_or_else(|| bad("fewer coefficients than subband pixels".into()))?;
                *px = if v == 0 {
                    0.0
                } else if v > 0 {
                    (f64::from(qb * (f32::from(v) - c)) + f64::from(zb) / 2.0) as f32
                } else {
                    (f64::from(qb * (f32::from(v) + c)) - f64::from(zb) / 2.0) as f32
                };
            }
        }
    }
    Ok(img)
}
