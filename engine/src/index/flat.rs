//! Exact f32 flat index: the reference every other index is measured against.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{GalleryIndex, Hit, TopK, check_add, check_dim, check_queries};
use crate::Result;
use crate::vector::{
    self, Isa, Level,
    blocked::{self, BLOCK},
};

/// Rows per tile: 128 rows x 512 d x 4 B = 256 KiB stays in L2 while every query of the
/// batch is scored against it, so the gallery streams from memory once per batch.
const TILE_BYTES: usize = 256 * 1024;
/// From this many queries on, packing row tiles pays for itself.
const PACK_MIN_QUERIES: usize = 4;
/// Below this many rows per thread, splitting across threads costs more than it saves.
const MIN_ROWS_PER_SHARD: usize = 4096;

/// Exact inner-product search over f32 vectors stored row-major in memory.
#[derive(Debug, Clone)]
pub struct FlatIndex {
    dim: usize,
    ids: Vec<u64>,
    data: Vec<f32>,
    pos: HashMap<u64, usize>,
}

impl FlatIndex {
    /// An empty index for `dim`-dimensional vectors.
    ///
    /// # Panics
    /// If `dim == 0`; use [`FlatIndex::try_new`] to get an error instead.
    pub fn new(dim: usize) -> Self {
        Self::try_new(dim).expect("FlatIndex::new: dim must be > 0")
    }

    /// An empty index, or `Invalid` for `dim == 0`.
    pub fn try_new(dim: usize) -> Result<Self> {
        check_dim(dim)?;
        Ok(FlatIndex { dim, ids: Vec::new(), data: Vec::new(), pos: HashMap::new() })
    }

    /// The stored vector for `id`, if present.
    pub fn get(&self, id: u64) -> Option<&[f32]> {
        self.pos.get(&id).map(|&r| self.row(r))
    }

    /// Live ids in storage order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// Row-major vectors in the same order as [`FlatIndex::ids`].
    pub fn vectors(&self) -> &[f32] {
        &self.data
    }

    #[inline]
    fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.dim..(r + 1) * self.dim]
    }

    /// Scores rows `[lo, hi)` against every query. Each L2-sized tile of rows is packed
    /// into the blocked layout once and then shared by every query of the batch
    /// (register-tiled FMA kernel); single queries use the row-wise dot kernel, which
    /// avoids the packing pass.
    fn scan(&self, isa: Isa, queries: &[f32], k: usize, lo: usize, hi: usize) -> Vec<TopK> {
        let d = self.dim;
        let nq = queries.len() / d;
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        let tile = (TILE_BYTES / (d * 4)).next_multiple_of(BLOCK).max(BLOCK);
        let (mut packed, mut scores) = (Vec::new(), Vec::new());
        let mut t0 = lo;
        while t0 < hi {
            let t1 = (t0 + tile).min(hi);
            // Packing only pays with a register-tiled kernel (AVX2, AVX-512); scalar and
            // NEON use the row kernel.
            let tiled = matches!(isa.level(), Level::Avx2 | Level::Avx512 | Level::Avx512Vnni);
            if nq < PACK_MIN_QUERIES || !tiled {
                for (q, top) in queries.chunks_exact(d).zip(tops.iter_mut()) {
                    for r in t0..t1 {
                        let s = vector::dot_with(isa, q, self.row(r));
                        if s >= top.threshold() {
                            top.push(self.ids[r], s);
                        }
                    }
                }
            } else {
                blocked::pack_f32(&self.data[t0 * d..t1 * d], d, &mut packed);
                let rows = (t1 - t0).next_multiple_of(BLOCK);
                scores.resize(nq * rows, 0.0);
                vector::f32_block_scores(isa, &packed, d, queries, &mut scores);
                for (qi, top) in tops.iter_mut().enumerate() {
                    for (r, &s) in scores[qi * rows..qi * rows + (t1 - t0)].iter().enumerate() {
                        if s >= top.threshold() {
                            top.push(self.ids[t0 + r], s);
                        }
                    }
                }
            }
            t0 = t1;
        }
        tops
    }
}

impl GalleryIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        check_add(self.dim, ids, vectors)?;
        for (&id, v) in ids.iter().zip(vectors.chunks_exact(self.dim)) {
            match self.pos.get(&id) {
                Some(&r) => self.data[r * self.dim..(r + 1) * self.dim].copy_from_slice(v),
                None => {
                    self.pos.insert(id, self.ids.len());
                    self.ids.push(id);
                    self.data.extend_from_slice(v);
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        let d = self.dim;
        let mut removed = 0;
        for id in ids {
            let Some(r) = self.pos.remove(id) else {
                continue;
            };
            removed += 1;
            let last = self.ids.len() - 1;
            if r != last {
                // Move the last row into the hole so storage stays dense.
                self.data.copy_within(last * d..(last + 1) * d, r * d);
                self.ids[r] = self.ids[last];
                self.pos.insert(self.ids[r], r);
            }
            self.ids.pop();
            self.data.truncate(last * d);
        }
        Ok(removed)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(self.dim, queries)?;
        if k == 0 || self.ids.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let isa = Isa::best();
        let n = self.ids.len();
        let shards = rayon::current_num_threads().min(n.div_ceil(MIN_ROWS_PER_SHARD)).max(1);
        let per = n.div_ceil(shards);
        let parts: Vec<Vec<TopK>> =
            (0..shards).into_par_iter().map(|s| self.scan(isa, queries, k, s * per, ((s + 1) * per).min(n))).collect();
        Ok(merge_shards(parts, nq, k))
    }
}

/// Merges per-shard top-k lists query by query.
pub(crate) fn merge_shards(parts: Vec<Vec<TopK>>, nq: usize, k: usize) -> Vec<Vec<Hit>> {
    let mut out: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    for part in parts {
        for (o, t) in out.iter_mut().zip(part) {
            o.merge(t);
        }
    }
    out.into_iter().map(TopK::into_sorted).collect()
}
