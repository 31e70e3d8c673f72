//! Scalar quantizers: how gallery vectors become int8 / f16 codes and how queries are
//! encoded to be scored against them.

use crate::vector::blocked::{BLOCK, CODE_BIAS, CODE_MAX, QUERY_MAX};

/// Which code a quantized index scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKind {
    /// 1 byte per dimension, per-dimension symmetric scale.
    Int8,
    /// IEEE half precision, 2 bytes per dimension.
    F16,
}

impl QuantKind {
    /// Bytes scanned per vector for dimension `dim` (before block padding).
    pub fn bytes_per_vector(self, dim: usize) -> usize {
        match self {
            QuantKind::Int8 => dim.next_multiple_of(4),
            QuantKind::F16 => 2 * dim,
        }
    }
}

/// Per-dimension int8 scales: `code_i = round(clamp(x_i * mul_i, -CODE_MAX, CODE_MAX))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Scales {
    /// Multiplier per dimension (`CODE_MAX` / clip range).
    pub mul: Vec<f32>,
}

/// Vectors below this count give too noisy a per-dimension range; widen to the
/// isotropic-unit-vector expectation (4 standard deviations of N(0, 1/d)).
const MIN_TRAIN: usize = 1000;

impl Int8Scales {
    /// Fits the clip range per dimension to the largest magnitude in `sample`
    /// (row-major, `dim` wide). Out-of-range values later are clamped; the exact
    /// re-rank absorbs the small extra error.
    pub fn train(sample: &[f32], dim: usize) -> Self {
        Self::train_rows(sample.chunks_exact(dim), dim)
    }

    /// [`Self::train`] over rows given one by one (no copy of a large gallery).
    pub fn train_rows<'a>(rows: impl Iterator<Item = &'a [f32]>, dim: usize) -> Self {
        let mut maxabs = vec![0f32; dim];
        let mut n = 0;
        for row in rows {
            n += 1;
            for (m, x) in maxabs.iter_mut().zip(row) {
                *m = m.max(x.abs());
            }
        }
        let floor = if n < MIN_TRAIN { 4.0 / (dim as f32).sqrt() } else { 1e-6 };
        let mul = maxabs.iter().map(|&m| CODE_MAX as f32 / m.max(floor)).collect();
        Int8Scales { mul }
    }

    /// Encodes one vector into `dp` signed codes (padding dims = 0).
    pub fn encode(&self, v: &[f32], out: &mut [i8]) {
        out.fill(0);
        for ((o, x), m) in out.iter_mut().zip(v).zip(&self.mul) {
            *o = (x * m).round().clamp(-(CODE_MAX as f32), CODE_MAX as f32) as i8;
        }
    }

    /// Encodes queries: `w_i = q_i / mul_i` so that `sum(code_i * w_i) ~ <x, q>`, then
    /// `w` is scaled to `±QUERY_MAX` (a positive factor per query, which does not change
    /// that query's ranking).
    pub fn encode_query(&self, q: &[f32], out: &mut [i8]) {
        out.fill(0);
        let w: Vec<f32> = q.iter().zip(&self.mul).map(|(x, m)| x / m).collect();
        let max = w.iter().fold(0f32, |a, x| a.max(x.abs()));
        if max == 0.0 {
            return;
        }
        let s = QUERY_MAX as f32 / max;
        for (o, x) in out.iter_mut().zip(&w) {
            *o = (x * s).round() as i8;
        }
    }
}

/// Writes the int8 codes of `row` (signed, `dp` long) into slot `r` of a block.
pub(crate) fn put_int8(block: &mut [u8], r: usize, codes: &[i8]) {
    for (g, c4) in codes.chunks_exact(4).enumerate() {
        for (j, c) in c4.iter().enumerate() {
            // Biased to u8, the unsigned operand of the kernels (see vector::blocked).
            block[g * 4 * BLOCK + 4 * r + j] = (*c as u8).wrapping_add(CODE_BIAS);
        }
    }
}

/// Writes the f16 values of `row` into slot `r` of a block.
pub(crate) fn put_f16(block: &mut [u16], r: usize, row: &[f32]) {
    for (k, x) in row.iter().enumerate() {
        block[k * BLOCK + r] = half::f16::from_f32(*x).to_bits();
    }
}
