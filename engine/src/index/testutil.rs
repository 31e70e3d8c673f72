//! Shared helpers for index tests: random unit vectors and a brute-force oracle.

use super::Hit;
use crate::vector;

/// Deterministic pseudo-random unit vectors (xorshift; no extra dependency).
pub fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = out.len();
        for _ in 0..dim {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            out.push(((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0);
        }
        vector::normalize(&mut out[start..]);
    }
    out
}

/// Exact top-k by brute force with the scalar kernel (the oracle).
pub fn brute_force(ids: &[u64], data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> =
        ids.iter().zip(data.chunks_exact(dim)).map(|(&id, v)| Hit { id, score: vector::scalar::dot(q, v) }).collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}
