//! Shared helpers for index tests: random unit vectors and a brute-force oracle.

use super::Hit;
use crate::vector;

pub use crate::vector::random_unit_vectors as unit_vectors;

/// Exact top-k by brute force with the scalar kernel (the oracle).
pub fn brute_force(ids: &[u64], data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> =
        ids.iter().zip(data.chunks_exact(dim)).map(|(&id, v)| Hit { id, score: vector::scalar::dot(q, v) }).collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}
