//! Partitioned (IVF) index: k-means lists of quantized codes; a query scans only its
//! `nprobe` nearest lists, then re-ranks the merged shortlist exactly.
//!
//! Batches are inverted per list, so all queries probing a list share one pass over it.

use std::collections::HashMap;

use rayon::prelude::*;

use super::kmeans;
use super::quant::{Int8Scales, QuantKind};
use super::store::{CodeStore, Encoded, encode_queries};
use super::{FlatIndex, GalleryIndex, Hit, TopK, check_add, check_dim, check_queries};
use crate::vector::Isa;
use crate::{EngineError, Result};

/// IVF over int8 or f16 codes with exact re-rank.
///
/// Recall depends on `nprobe` and on how clustered the data is; it is *not* exact.
/// The bench reports its recall–QPS curve.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    kind: QuantKind,
    dim: usize,
    nlist: usize,
    nprobe: usize,
    rerank: Option<usize>,
    centroids: Option<FlatIndex>,
    scales: Option<Int8Scales>,
    lists: Vec<CodeStore>,
    pos: HashMap<u64, (u32, u32)>,
    /// k-means Lloyd iterations and sample rows per list.
    pub train_iters: usize,
    /// Training sample size per list (FAISS default-like 50).
    pub train_per_list: usize,
}

impl IvfIndex {
    /// An untrained index with `nlist` lists; the first `add` trains it if
    /// [`IvfIndex::train`] was not called.
    pub fn new(kind: QuantKind, dim: usize, nlist: usize) -> Result<Self> {
        check_dim(dim)?;
        if nlist == 0 {
            return Err(EngineError::Invalid("ivf: nlist must be > 0".into()));
        }
        Ok(IvfIndex {
            kind,
            dim,
            nlist,
            nprobe: 16.min(nlist),
            rerank: None,
            centroids: None,
            scales: None,
            lists: Vec::new(),
            pos: HashMap::new(),
            train_iters: 10,
            train_per_list: 50,
        })
    }

    /// Lists scanned per query.
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe.clamp(1, self.nlist);
    }

    /// Shortlist re-ranked exactly per query (default `max(4k, 32)`).
    pub fn set_rerank(&mut self, n: usize) {
        self.rerank = Some(n.max(1));
    }

    /// Whether centroids exist.
    pub fn is_trained(&self) -> bool {
        self.centroids.is_some()
    }

    /// Number of lists after training (may be below the requested count for tiny samples).
    pub fn nlist(&self) -> usize {
        self.nlist
    }

    /// Code bytes per vector (what a probed list costs to scan per vector).
    pub fn scanned_bytes_per_vector(&self) -> usize {
        self.kind.bytes_per_vector(self.dim)
    }

    /// Resident bytes: codes, re-rank vectors, ids, centroids.
    pub fn bytes(&self) -> usize {
        self.lists.iter().map(CodeStore::bytes).sum::<usize>() + 4 * self.nlist * self.dim
    }

    /// Mean fraction of the live vectors that `search` scans for these queries at the
    /// current `nprobe` (the probed lists' sizes over the index size): the IVF work
    /// relative to a flat scan, which `nprobe / nlist` only approximates when lists are
    /// unequal. 0 for an empty index or no queries.
    pub fn scanned_fraction(&self, queries: &[f32]) -> Result<f64> {
        let nq = check_queries(self.dim, queries)?;
        if nq == 0 || self.pos.is_empty() {
            return Ok(0.0);
        }
        let probes = self.centroid_matrix().search(queries, self.nprobe)?;
        let scanned: usize = probes
            .iter()
            .flat_map(|hits| {
                hits.iter().map(|h| {
                    let st = &self.lists[h.id as usize];
                    st.slots() - st.dead
                })
            })
            .sum();
        Ok(scanned as f64 / (nq as f64 * self.pos.len() as f64))
    }

    /// Trains centroids (and int8 scales) on a row-major sample. Fails once vectors exist.
    pub fn train(&mut self, sample: &[f32]) -> Result<()> {
        if !self.pos.is_empty() {
            return Err(EngineError::Unsupported("ivf: retraining a non-empty index".into()));
        }
        let n = sample.len() / self.dim;
        if n == 0 || !sample.len().is_multiple_of(self.dim) {
            return Err(EngineError::Invalid("ivf: training sample is empty or ragged".into()));
        }
        // Subsample like FAISS: train_per_list rows per list, evenly strided.
        let want = (self.train_per_list * self.nlist).min(n);
        let stride = n / want;
        let sub: Vec<f32> = (0..want)
            .flat_map(|i| sample[i * stride * self.dim..(i * stride + 1) * self.dim].iter().copied())
            .collect();
        let cents = kmeans::train(&sub, self.dim, self.nlist, self.train_iters, 42)?;
        self.nlist = cents.len() / self.dim;
        self.nprobe = self.nprobe.min(self.nlist);
        let mut c = FlatIndex::new(self.dim);
        c.add(&(0..self.nlist as u64).collect::<Vec<_>>(), &cents)?;
        self.centroids = Some(c);
        if self.kind == QuantKind::Int8 {
            self.scales = Some(Int8Scales::train(&sub, self.dim));
        }
        self.lists = (0..self.nlist).map(|_| CodeStore::new(self.kind, self.dim)).collect();
        Ok(())
    }

    fn centroid_matrix(&self) -> &FlatIndex {
        self.centroids.as_ref().expect("trained")
    }

    fn shortlist(&self, k: usize) -> usize {
        self.rerank.unwrap_or((4 * k).max(32)).max(k)
    }
}

impl GalleryIndex for IvfIndex {
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
        if !self.is_trained() {
            self.train(vectors)?;
        }
        let cents = self.centroid_matrix().vectors().to_vec();
        let assign = kmeans::assign(&cents, self.dim, vectors)?;
        let mut scratch = Vec::new();
        for ((&id, v), &l) in ids.iter().zip(vectors.chunks_exact(self.dim)).zip(&assign) {
            if let Some((ol, os)) = self.pos.remove(&id) {
                self.lists[ol as usize].kill(os as usize);
            }
            let slot = self.lists[l as usize].push(id, v, self.scales.as_ref(), &mut scratch);
            self.pos.insert(id, (l, slot as u32));
        }
        Ok(())
    }

    fn slots(&self) -> usize {
        self.lists.iter().map(|l| l.slots()).sum()
    }

    fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        let mut n = 0;
        let mut touched = Vec::new();
        for id in ids {
            if let Some((l, s)) = self.pos.remove(id) {
                self.lists[l as usize].kill(s as usize);
                touched.push(l as usize);
                n += 1;
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for l in touched {
            let st = &self.lists[l];
            if st.dead > 64 && st.dead * 4 > st.slots() {
                self.lists[l] = st.compacted(self.kind, self.scales.as_ref());
                let st = &self.lists[l];
                for s in 0..st.slots() {
                    self.pos.insert(st.ids[s], (l as u32, s as u32));
                }
            }
        }
        Ok(n)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(self.dim, queries)?;
        if k == 0 || self.pos.is_empty() || nq == 0 {
            return Ok(vec![Vec::new(); nq]);
        }
        let d = self.dim;
        let isa = Isa::best();
        let l = self.shortlist(k);
        // 1. Coarse: each query's nprobe nearest lists.
        let probes = self.centroid_matrix().search(queries, self.nprobe)?;
        // 2. Invert: which queries probe each list.
        let mut by_list: Vec<Vec<u32>> = vec![Vec::new(); self.nlist];
        for (qi, hits) in probes.iter().enumerate() {
            for h in hits {
                by_list[h.id as usize].push(qi as u32);
            }
        }
        let enc_all = encode_queries(self.kind, d, self.scales.as_ref(), queries);
        // 3. Queries are split across threads; each thread walks the probed lists in
        //    order, scanning a list once for all of its queries that probe it, and keeps
        //    one shortlist per query so its threshold stays tight across lists. Code
        //    scores are comparable across lists (global scales, one encoding per query).
        let shards = rayon::current_num_threads().min(nq.div_ceil(8)).max(1);
        let per = nq.div_ceil(shards);
        let merged: Vec<TopK> = (0..shards)
            .into_par_iter()
            .flat_map_iter(|s| {
                let (q0, q1) = (s * per, ((s + 1) * per).min(nq));
                let mut short: Vec<TopK> = (q0..q1).map(|_| TopK::new(l)).collect();
                for (li, qs) in by_list.iter().enumerate() {
                    let st = &self.lists[li];
                    // by_list is sorted by query number, so this shard's part is a range.
                    let a = qs.partition_point(|&q| (q as usize) < q0);
                    let b = qs.partition_point(|&q| (q as usize) < q1);
                    if a == b || !st.live_len_nonzero() {
                        continue;
                    }
                    let mine = &qs[a..b];
                    let enc = gather(&enc_all, mine, d);
                    let mut tops: Vec<TopK> =
                        mine.iter().map(|&q| std::mem::replace(&mut short[q as usize - q0], TopK::new(0))).collect();
                    st.scan(isa, &enc, mine.len(), 0, st.blocks(), (li as u64) << 32, &mut tops);
                    for (&q, t) in mine.iter().zip(tops) {
                        short[q as usize - q0] = t;
                    }
                }
                short
            })
            .collect();
        // 4. Exact re-rank of each query's merged shortlist.
        Ok(merged
            .into_par_iter()
            .zip(queries.par_chunks_exact(d))
            .map(|(sh, q)| {
                let mut top = TopK::new(k);
                for h in sh.into_sorted() {
                    let st = &self.lists[(h.id >> 32) as usize];
                    let slot = (h.id & 0xFFFF_FFFF) as usize;
                    top.push(st.ids[slot], crate::vector::dot(q, st.exact_row(slot)));
                }
                top.into_sorted()
            })
            .collect())
    }
}

/// The encoded rows of queries `qs`.
fn gather(enc: &Encoded, qs: &[u32], d: usize) -> Encoded {
    match enc {
        Encoded::I8(v) => {
            let dp = d.next_multiple_of(4);
            Encoded::I8(qs.iter().flat_map(|&q| v[q as usize * dp..(q as usize + 1) * dp].iter().copied()).collect())
        }
        Encoded::F32(v) => {
            Encoded::F32(qs.iter().flat_map(|&q| v[q as usize * d..(q as usize + 1) * d].iter().copied()).collect())
        }
    }
}
