//! Quantized flat index: scan int8 or f16 codes of the whole gallery, then re-rank a
//! shortlist per query with exact f32 inner products.

use std::collections::HashMap;

use rayon::prelude::*;

use super::quant::{Int8Scales, QuantKind};
use super::store::{CodeStore, encode_queries};
use super::{GalleryIndex, Hit, TopK, check_add, check_dim, check_queries, flat::merge_shards};
use crate::Result;
use crate::vector::Isa;

/// Blocks per rayon shard at minimum (smaller galleries are scanned on one thread).
const MIN_BLOCKS_PER_SHARD: usize = 256;

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
    store: CodeStore,
    pos: HashMap<u64, usize>,
    rerank: Option<usize>,
}

impl QuantFlatIndex {
    /// An empty index. int8 scales are fitted on the first `add` (or [`Self::train`]).
    pub fn new(kind: QuantKind, dim: usize) -> Result<Self> {
        check_dim(dim)?;
        Ok(QuantFlatIndex {
            kind,
            dim,
            scales: None,
            store: CodeStore::new(kind, dim),
            pos: HashMap::new(),
            rerank: None,
        })
    }

    /// Fits int8 scales on a sample (row-major); re-encodes anything already added.
    pub fn train(&mut self, sample: &[f32]) {
        if self.kind == QuantKind::Int8 {
            self.scales = Some(Int8Scales::train(sample, self.dim));
            self.store = self.store.compacted(self.kind, self.scales.as_ref());
            self.reindex();
        }
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
        self.store = self.store.compacted(self.kind, self.scales.as_ref());
        self.reindex();
    }

    fn reindex(&mut self) {
        self.pos = (0..self.store.slots()).filter(|&s| self.store.live[s]).map(|s| (self.store.ids[s], s)).collect();
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
        check_add(self.dim, ids, vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        if self.kind == QuantKind::Int8 && self.scales.is_none() {
            self.scales = Some(Int8Scales::train(vectors, self.dim));
        }
        let mut scratch = Vec::new();
        for (&id, v) in ids.iter().zip(vectors.chunks_exact(self.dim)) {
            if let Some(old) = self.pos.get(&id) {
                self.store.kill(*old);
            }
            let slot = self.store.push(id, v, self.scales.as_ref(), &mut scratch);
            self.pos.insert(id, slot);
        }
        self.maybe_compact();
        Ok(())
    }

    fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        let mut n = 0;
        for id in ids {
            if let Some(slot) = self.pos.remove(id) {
                self.store.kill(slot);
                n += 1;
            }
        }
        self.maybe_compact();
        Ok(n)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(self.dim, queries)?;
        if k == 0 || self.pos.is_empty() || nq == 0 {
            return Ok(vec![Vec::new(); nq]);
        }
        let isa = Isa::best();
        let enc = encode_queries(self.kind, self.dim, self.scales.as_ref(), queries);
        let l = self.shortlist(k);
        let nb = self.store.blocks();
        let shards = rayon::current_num_threads().min(nb.div_ceil(MIN_BLOCKS_PER_SHARD)).max(1);
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
        Ok(merge_shards(parts, nq, k))
    }
}

impl QuantFlatIndex {
    /// Compacts once tombstones exceed a quarter of the slots, so scans don't pay for
    /// dead rows indefinitely.
    fn maybe_compact(&mut self) {
        if self.store.dead > 1024 && self.store.dead * 4 > self.store.slots() {
            self.compact();
        }
    }
}
