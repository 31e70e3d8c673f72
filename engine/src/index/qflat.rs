//! Quantized flat index: scan int8 or f16 codes of the whole gallery, then re-rank a
//! shortlist per query with exact f32 inner products.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::quant::{Int8Scales, QuantKind};
use super::store::{CodeStore, encode_queries};
use super::{GalleryIndex, Hit, SegmentFile, TopK, check_add, check_dim, check_queries, flat::merge_shards};
use crate::Result;
use crate::vector::Isa;

/// Queries per thread from which a batch is split by queries instead of by gallery
/// shards. Each thread then reads the whole gallery, but with a full kernel chunk of
/// queries per pass over each tile it stays compute-bound. Measured with `epatrol bench
/// index`, 1000 queries, 2 threads, alternated: 100k x 128 12 660 vs 10 700 QPS, 100k x 512
/// 3 890 vs 3 645, 1M x 128 1 592 vs 1 539, 1M x 512 421 vs 416.
const QUERY_SPLIT_MIN: usize = 16;
/// Blocks per rayon shard at minimum (smaller galleries are scanned on one thread).
const MIN_BLOCKS_PER_SHARD: usize = 256;
/// int8 scales are re-fitted on the whole gallery whenever it has grown this many times
/// past the count they were fitted on: a gallery that starts empty and grows by
/// enrolments would otherwise keep scales from its first few vectors.
const REFIT_GROWTH: usize = 10;
/// … until they were fitted on this many vectors (the ranges have settled by then).
const REFIT_UNTIL: usize = 100_000;
/// Tombstones worth a compaction: more than this many and more than a quarter of the
/// slots ([`GalleryIndex::compacted`], built off the search path by the server) …
const COMPACT_MIN_DEAD: usize = 1024;
/// … and the share of dead slots at which `add` / `remove` compact inline anyway, for
/// callers that never ask for a compacted copy.
const INLINE_COMPACT_DEAD: f64 = 0.5;

/// Flat scan over quantized codes with exact re-rank.
///
/// Recall: the final top-k is exact whenever the exact top-k are all inside the
/// code-score shortlist of `rerank` candidates (per shard); with the default shortlist
/// (`max(4k, 32)`) on unit vectors this held for every query in the tests and benches.
#[derive(Debug, Clone)]
pub struct QuantFlatIndex {
    kind: QuantKind,
    dim: usize,
    scales: Option<Int8Scales>,
    /// Live vectors the int8 scales were fitted on.
    fitted_on: usize,
    store: CodeStore,
    pos: HashMap<u64, usize>,
    rerank: Option<usize>,
    /// Adds and removals so far (see [`GalleryIndex::generation`]).
    generation: u64,
}

impl QuantFlatIndex {
    /// An empty index. int8 scales are fitted on the first `add` (or [`Self::train`]) and
    /// re-fitted as the gallery grows (see [`REFIT_GROWTH`]).
    pub fn new(kind: QuantKind, dim: usize) -> Result<Self> {
        check_dim(dim)?;
        Ok(QuantFlatIndex {
            kind,
            dim,
            scales: None,
            fitted_on: 0,
            store: CodeStore::new(kind, dim),
            pos: HashMap::new(),
            rerank: None,
            generation: 0,
        })
    }

    /// Fits int8 scales on a sample (row-major); re-encodes anything already added.
    pub fn train(&mut self, sample: &[f32]) {
        if self.kind == QuantKind::Int8 {
            self.scales = Some(Int8Scales::train(sample, self.dim));
            self.fitted_on = sample.len() / self.dim;
            self.compact();
        }
    }

    /// Re-fits the int8 scales on every live vector and re-encodes (see [`REFIT_GROWTH`]).
    fn refit(&mut self) {
        let rows = (0..self.store.slots()).filter(|&s| self.store.live[s]).map(|s| self.store.exact_row(s));
        self.scales = Some(Int8Scales::train_rows(rows, self.dim));
        self.fitted_on = self.pos.len();
        self.compact();
    }

    /// Sets the shortlist size re-ranked exactly per query (default `max(4k, 32)`).
    pub fn set_rerank(&mut self, n: usize) {
        self.rerank = Some(n.max(1));
    }

    /// Which code this index scans.
    pub fn kind(&self) -> QuantKind {
        self.kind
    }

    /// Resident bytes (codes + re-rank vectors + ids), excluding the id hash map.
    pub fn bytes(&self) -> usize {
        self.store.bytes()
    }

    /// Bytes scanned per vector by one query (codes only).
    pub fn scanned_bytes_per_vector(&self) -> usize {
        self.kind.bytes_per_vector(self.dim)
    }

    /// Rewrites storage without tombstoned slots.
    pub fn compact(&mut self) {
        (self.store, self.pos) = self.without_dead();
    }

    /// The store without tombstoned slots (re-encoded with the current scales) and its
    /// id -> slot map: shared by [`Self::compact`] and the copy of `compacted()`.
    fn without_dead(&self) -> (CodeStore, HashMap<u64, usize>) {
        let store = self.store.compacted(self.kind, self.scales.as_ref());
        let pos = (0..store.slots()).filter(|&s| store.live[s]).map(|s| (store.ids[s], s)).collect();
        (store, pos)
    }

    /// Adds rows, copied for the re-rank, or read from `file`'s mapping when given (then
    /// `ids` and `vectors` are that file's).
    fn add_rows(&mut self, ids: &[u64], vectors: &[f32], file: Option<&Arc<SegmentFile>>) -> Result<()> {
        check_add(self.dim, ids, vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        self.generation += 1;
        if self.kind == QuantKind::Int8 && self.scales.is_none() {
            self.scales = Some(Int8Scales::train(vectors, self.dim));
            self.fitted_on = ids.len();
        }
        let mut scratch = Vec::new();
        for (row, (&id, v)) in ids.iter().zip(vectors.chunks_exact(self.dim)).enumerate() {
            if let Some(old) = self.pos.get(&id) {
                self.store.kill(*old);
            }
            let slot = match file {
                Some(f) => self.store.push_mapped(id, f, row, self.scales.as_ref(), &mut scratch),
                None => self.store.push(id, v, self.scales.as_ref(), &mut scratch),
            };
            self.pos.insert(id, slot);
        }
        if self.kind == QuantKind::Int8
            && self.fitted_on < REFIT_UNTIL
            && self.pos.len() >= REFIT_GROWTH * self.fitted_on
        {
            self.refit();
        }
        self.maybe_compact();
        Ok(())
    }

    fn shortlist(&self, k: usize) -> usize {
        self.rerank.unwrap_or((4 * k).max(32)).max(k)
    }
}

impl GalleryIndex for QuantFlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.pos.len()
    }

    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        self.add_rows(ids, vectors, None)
    }

    fn add_segment(&mut self, file: &Arc<SegmentFile>) -> Result<()> {
        self.add_rows(file.ids(), file.vectors(), Some(file))
    }

    fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        let mut n = 0;
        for id in ids {
            if let Some(slot) = self.pos.remove(id) {
                self.store.kill(slot);
                n += 1;
            }
        }
        self.generation += (n > 0) as u64;
        self.maybe_compact();
        Ok(n)
    }

    fn slots(&self) -> usize {
        self.store.slots()
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    fn compacted(&self) -> Option<Box<dyn GalleryIndex>> {
        let dead = self.store.dead;
        if dead <= COMPACT_MIN_DEAD || dead * 4 <= self.store.slots() {
            return None;
        }
        let (store, pos) = self.without_dead();
        Some(Box::new(QuantFlatIndex { store, pos, scales: self.scales.clone(), ..*self }))
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(self.dim, queries)?;
        if k == 0 || self.pos.is_empty() || nq == 0 {
            return Ok(vec![Vec::new(); nq]);
        }
        let threads = rayon::current_num_threads();
        if threads > 1 && nq >= QUERY_SPLIT_MIN * threads {
            // A batch: each thread scans the whole gallery for its share of the queries, so
            // no per-shard shortlists are kept and merged (see QUERY_SPLIT_MIN).
            let parts: Vec<Vec<Vec<Hit>>> =
                queries.par_chunks(nq.div_ceil(threads) * self.dim).map(|q| self.search_shards(q, k, 1)).collect();
            return Ok(parts.concat());
        }
        let shards = threads.min(self.store.blocks().div_ceil(MIN_BLOCKS_PER_SHARD)).max(1);
        Ok(self.search_shards(queries, k, shards))
    }
}

impl QuantFlatIndex {
    /// Scans the gallery in `shards` parallel parts for all queries; merges their top-k.
    fn search_shards(&self, queries: &[f32], k: usize, shards: usize) -> Vec<Vec<Hit>> {
        let nq = queries.len() / self.dim;
        let isa = Isa::best();
        let enc = encode_queries(self.kind, self.dim, self.scales.as_ref(), queries);
        let l = self.shortlist(k);
        let nb = self.store.blocks();
        let per = nb.div_ceil(shards);
        let parts: Vec<Vec<TopK>> = (0..shards)
            .into_par_iter()
            .map(|s| {
                let mut short: Vec<TopK> = (0..nq).map(|_| TopK::new(l)).collect();
                self.store.scan(isa, &enc, nq, s * per, ((s + 1) * per).min(nb), 0, &mut short);
                short
                    .into_iter()
                    .zip(queries.chunks_exact(self.dim))
                    .map(|(sh, q)| {
                        let mut top = TopK::new(k);
                        self.store.rerank(q, sh, &mut top);
                        top
                    })
                    .collect()
            })
            .collect();
        merge_shards(parts, nq, k)
    }
}

impl QuantFlatIndex {
    /// Compacts inline once half the slots are dead, so scans don't pay for dead rows
    /// indefinitely when nobody builds a compacted copy off the search path.
    fn maybe_compact(&mut self) {
        let dead = self.store.dead;
        if dead > COMPACT_MIN_DEAD && dead as f64 > INLINE_COMPACT_DEAD * self.store.slots() as f64 {
            self.compact();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors from a xorshift stream.
    fn rows(n: usize, dim: usize) -> Vec<f32> {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % 2001) as f32 / 1000.0 - 1.0
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(v.iter().map(|x| x / norm));
        }
        out
    }

    #[test]
    fn int8_scales_are_refitted_as_the_gallery_grows() {
        let (dim, n) = (16, 1200);
        let all = rows(n, dim);
        let mut idx = QuantFlatIndex::new(QuantKind::Int8, dim).unwrap();
        idx.add(&[0], &all[..dim]).unwrap();
        // one vector: the small-sample floor decides every scale
        let first = idx.scales.clone();
        assert_eq!(idx.fitted_on, 1);
        for i in 1..n {
            idx.add(&[i as u64], &all[i * dim..(i + 1) * dim]).unwrap();
        }
        // re-fitted at 10, 100 and 1000 vectors; at 1000 the measured ranges replace the floor
        assert_eq!(idx.fitted_on, 1000);
        assert_eq!(idx.scales, Some(Int8Scales::train(&all[..1000 * dim], dim)));
        assert_ne!(idx.scales, first);
        assert_eq!(idx.len(), n);
        for i in (0..n).step_by(37) {
            assert_eq!(idx.search(&all[i * dim..(i + 1) * dim], 1).unwrap()[0][0].id, i as u64, "vector {i}");
        }
        // a gallery loaded in one batch is fitted on all of it and not re-fitted
        let mut batch = QuantFlatIndex::new(QuantKind::Int8, dim).unwrap();
        batch.add(&(0..n as u64).collect::<Vec<u64>>(), &all).unwrap();
        assert_eq!((batch.fitted_on, batch.scales), (n, Some(Int8Scales::train(&all, dim))));
    }

    #[test]
    fn a_compacted_copy_answers_the_same_and_is_refused_after_a_change() {
        let (dim, n) = (8, 4000);
        let all = rows(n, dim);
        let ids: Vec<u64> = (0..n as u64).collect();
        let mut idx = QuantFlatIndex::new(QuantKind::Int8, dim).unwrap();
        idx.add(&ids, &all).unwrap();
        assert!(idx.compacted().is_none(), "nothing dead yet");
        // 1500 of 4000 dead: above the copy's bar (a quarter), below the inline one (half)
        let gone: Vec<u64> = (0..1500).map(|i| i * 2).collect();
        idx.remove(&gone).unwrap();
        assert_eq!(idx.store.slots(), n, "not compacted inline");
        let g = idx.generation();
        let copy = idx.compacted().expect("worth compacting");
        assert_eq!((copy.generation(), copy.len()), (g, n - 1500));
        let probes = &all[..50 * dim];
        assert_eq!(copy.search(probes, 5).unwrap(), idx.search(probes, 5).unwrap());
        // a change after the copy was made moves the generation on: the copy is stale
        idx.remove(&[1]).unwrap();
        assert_ne!(idx.generation(), g);
        idx.remove(&[1]).unwrap();
        assert_ne!(idx.generation(), g, "generations never go back");
        // past half dead, removal compacts inline
        let more: Vec<u64> = (0..700).map(|i| i * 2 + 3).collect();
        idx.remove(&more).unwrap();
        assert_eq!(idx.store.slots(), idx.len());
    }
}
