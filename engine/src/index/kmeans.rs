//! Spherical k-means for IVF coarse centroids, with assignment through the int8 index
//! (batched VNNI scan + exact re-rank), which is what makes training at 4000 lists
//! affordable on two cores.

use super::{GalleryIndex, QuantFlatIndex, QuantKind};
use crate::Result;
use crate::vector;

/// Deterministic xorshift stream (no RNG dependency; reproducible training).
pub(crate) struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Nearest centroid (max inner product) of every row of `data`.
pub(crate) fn assign(centroids: &[f32], dim: usize, data: &[f32]) -> Result<Vec<u32>> {
    let nlist = centroids.len() / dim;
    let mut idx = QuantFlatIndex::new(QuantKind::Int8, dim)?;
    idx.train(centroids);
    idx.add(&(0..nlist as u64).collect::<Vec<_>>(), centroids)?;
    idx.set_rerank(8);
    // Bounded batches keep the per-batch score buffers small.
    let mut out = Vec::with_capacity(data.len() / dim);
    for chunk in data.chunks(8192 * dim) {
        for hits in idx.search(chunk, 1)? {
            out.push(hits.first().map_or(0, |h| h.id as u32));
        }
    }
    Ok(out)
}

/// Trains `nlist` unit-norm centroids on `sample` (row-major) with `iters` Lloyd steps.
pub(crate) fn train(sample: &[f32], dim: usize, nlist: usize, iters: usize, seed: u64) -> Result<Vec<f32>> {
    let n = sample.len() / dim;
    let nlist = nlist.min(n).max(1);
    let mut rng = XorShift::new(seed);
    // Initialise from distinct random sample rows (partial Fisher-Yates).
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..nlist {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut cents: Vec<f32> =
        order[..nlist].iter().flat_map(|&i| sample[i * dim..(i + 1) * dim].iter().copied()).collect();
    for _ in 0..iters {
        let a = assign(&cents, dim, sample)?;
        let mut sums = vec![0f32; nlist * dim];
        let mut counts = vec![0usize; nlist];
        for (row, &c) in sample.chunks_exact(dim).zip(&a) {
            counts[c as usize] += 1;
            for (s, x) in sums[c as usize * dim..(c as usize + 1) * dim].iter_mut().zip(row) {
                *s += x;
            }
        }
        for c in 0..nlist {
            let dst = &mut cents[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                // Re-seed an empty list with a random sample row.
                let i = rng.below(n);
                dst.copy_from_slice(&sample[i * dim..(i + 1) * dim]);
            } else {
                dst.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
            }
            vector::normalize(dst);
        }
    }
    Ok(cents)
}
