//! [`GalleryIndex`] over faiss (cargo feature `faiss`), so the faiss indexes and ours run
//! side by side in one binary (`epatrol bench index --index faiss-flat,...`).
//!
//! The faiss crate builds the vendored faiss statically (faiss-sys `static`: CMake, BLAS,
//! LAPACK, OpenMP; see docs/index.md). Indexes are made with `index_factory` and inner
//! product. Our u64 ids go to faiss unchanged as its signed `idx_t`, where negative labels
//! mean "no result", so ids must be below 2^63.

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::raw::c_int;

use faiss::index::IndexImpl;
use faiss::index::autotune::ParameterSpace;
use faiss::selector::IdSelector;
use faiss::{Idx, Index, MetricType, index_factory};

use super::{GalleryIndex, Hit, check_add, check_dim, check_queries};
use crate::{EngineError, Result};

unsafe extern "C" {
    /// OpenMP (libgomp, linked by faiss-sys): threads of the calling thread's next
    /// parallel regions. faiss parallelises a search with OpenMP, not rayon.
    fn omp_set_num_threads(n: c_int);
}

/// Which faiss index to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaissKind {
    /// Exact scan of f32 vectors (`IndexFlatIP` under an `IndexIDMap`).
    Flat,
    /// Flat scan of 8-bit scalar-quantised codes (`IndexScalarQuantizer` SQ8 under an
    /// `IndexIDMap`); trained (per-dimension ranges) on the first batch added.
    Sq8,
    /// HNSW graph over f32 vectors (`IndexHNSWFlat` under an `IndexIDMap`). faiss cannot
    /// remove from HNSW, so removals and re-adds of present ids are refused.
    Hnsw {
        /// Neighbours per node (faiss `M`).
        m: usize,
        /// Candidate list size while building (faiss `efConstruction`).
        ef_construction: usize,
    },
    /// Inverted lists over a k-means coarse quantiser (`IndexIVFFlat`, or
    /// `IndexIVFScalarQuantizer` SQ8 codes when `sq8`); trained on the first batch added
    /// unless [`FaissIndex::train`] ran first.
    Ivf {
        /// Number of lists (k-means centroids).
        nlist: usize,
        /// Store 8-bit scalar codes in the lists instead of f32 vectors.
        sq8: bool,
    },
}

impl FaissKind {
    /// The `index_factory` description. Flat, SQ8 and HNSW cannot take caller ids, so
    /// they sit under an IDMap (which also removes through the inner index); IVF stores
    /// the ids in its lists itself.
    pub fn description(self) -> String {
        match self {
            FaissKind::Flat => "IDMap,Flat".into(),
            FaissKind::Sq8 => "IDMap,SQ8".into(),
            FaissKind::Hnsw { m, .. } => format!("IDMap,HNSW{m},Flat"),
            FaissKind::Ivf { nlist, sq8 } => format!("IVF{nlist},{}", if sq8 { "SQ8" } else { "Flat" }),
        }
    }

    fn can_remove(self) -> bool {
        !matches!(self, FaissKind::Hnsw { .. })
    }
}

/// A faiss index behind [`GalleryIndex`]: inner-product search, u64 ids.
pub struct FaissIndex {
    kind: FaissKind,
    dim: usize,
    index: IndexImpl,
    /// Live ids: faiss appends duplicates, while our trait replaces on re-add.
    live: HashSet<u64>,
    generation: u64,
}

impl std::fmt::Debug for FaissIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaissIndex")
            .field("kind", &self.kind)
            .field("dim", &self.dim)
            .field("len", &self.live.len())
            .finish()
    }
}

/// Makes faiss's OpenMP regions started from this thread use as many threads as the
/// caller's rayon pool, so `pool(1).install(|| index.search(..))` runs on one thread here
/// too (the bench's 1t / 2t figures and `--build-threads`).
fn follow_rayon_threads() {
    let n = c_int::try_from(rayon::current_num_threads()).unwrap_or(1).max(1);
    // SAFETY: omp_set_num_threads only sets the calling thread's OpenMP thread count.
    unsafe { omp_set_num_threads(n) };
}

/// A faiss failure as our error.
fn ferr(what: &str, e: faiss::error::Error) -> EngineError {
    EngineError::Faiss(format!("{what}: {e}"))
}

/// The message of the exception behind the last failed faiss C call on this thread.
fn last_error(what: &str) -> EngineError {
    // SAFETY: faiss_get_last_error returns null or a NUL-terminated string owned by
    // faiss's thread-local error slot, valid until the next faiss call on this thread;
    // it is copied out at once.
    let msg = unsafe {
        let p = faiss_sys::faiss_get_last_error();
        if p.is_null() { "unknown error".to_string() } else { CStr::from_ptr(p).to_string_lossy().into_owned() }
    };
    EngineError::Faiss(format!("{what}: {msg}"))
}

/// Largest id faiss can hold (`idx_t` is i64).
const MAX_ID: u64 = i64::MAX as u64;

/// Ids as faiss labels; callers keep them <= [`MAX_ID`] (`Idx::new` panics above).
fn to_idx(ids: &[u64]) -> Vec<Idx> {
    ids.iter().map(|&id| Idx::new(id)).collect()
}

impl FaissIndex {
    /// An empty index of `kind` for `dim`-dimensional vectors.
    pub fn new(kind: FaissKind, dim: usize) -> Result<Self> {
        check_dim(dim)?;
        let dim32 = u32::try_from(dim).map_err(|_| EngineError::Invalid(format!("dimension {dim} too large")))?;
        match kind {
            FaissKind::Hnsw { m, .. } if m < 2 => {
                return Err(EngineError::Invalid(format!("faiss HNSW needs M >= 2, got {m}")));
            }
            FaissKind::Ivf { nlist: 0, .. } => {
                return Err(EngineError::Invalid("faiss IVF needs nlist > 0".into()));
            }
            _ => {}
        }
        let index = index_factory(dim32, kind.description(), MetricType::InnerProduct)
            .map_err(|e| ferr(&format!("index_factory({:?})", kind.description()), e))?;
        let mut me = FaissIndex { kind, dim, index, live: HashSet::new(), generation: 0 };
        if let FaissKind::Hnsw { ef_construction, .. } = kind {
            me.set_parameter("efConstruction", ef_construction)?;
        }
        Ok(me)
    }

    /// The kind this index was built as.
    pub fn kind(&self) -> FaissKind {
        self.kind
    }

    /// True once trained (always for Flat and HNSW).
    pub fn is_trained(&self) -> bool {
        self.index.is_trained()
    }

    /// Trains SQ8 ranges or IVF centroids on `sample` (row-major, `dim` wide) before the
    /// first add; without it the first batch added is the training set. An IVF needs at
    /// least `nlist` rows (faiss warns below 39 per list).
    pub fn train(&mut self, sample: &[f32]) -> Result<()> {
        let n = sample.len() / self.dim;
        if !sample.len().is_multiple_of(self.dim) || sample.iter().any(|x| !x.is_finite()) {
            return Err(EngineError::Invalid(format!(
                "faiss train: {} floats are not whole finite {}-dimensional rows",
                sample.len(),
                self.dim
            )));
        }
        if let FaissKind::Ivf { nlist, .. } = self.kind
            && n < nlist
        {
            return Err(EngineError::Invalid(format!(
                "faiss {}: training needs at least nlist = {nlist} vectors, got {n}",
                self.kind.description()
            )));
        }
        if n == 0 {
            return Err(EngineError::Invalid("faiss train: empty sample".into()));
        }
        follow_rayon_threads();
        self.index.train(sample).map_err(|e| ferr("train", e))
    }

    /// Lists probed per query (IVF); `Unsupported` for other kinds.
    pub fn set_nprobe(&mut self, nprobe: usize) -> Result<()> {
        match self.kind {
            FaissKind::Ivf { .. } => self.set_parameter("nprobe", nprobe.max(1)),
            _ => Err(EngineError::Unsupported(format!("nprobe on faiss {}", self.kind.description()))),
        }
    }

    /// Candidate list size while searching (HNSW `efSearch`; faiss uses max(efSearch, k));
    /// `Unsupported` for other kinds.
    pub fn set_ef_search(&mut self, ef: usize) -> Result<()> {
        match self.kind {
            FaissKind::Hnsw { .. } => self.set_parameter("efSearch", ef.max(1)),
            _ => Err(EngineError::Unsupported(format!("efSearch on faiss {}", self.kind.description()))),
        }
    }

    /// Sets a faiss tunable through `ParameterSpace` (it sees through the IDMap). `&mut`
    /// although the C API takes a shared pointer: it writes the index, so no search may
    /// run meanwhile.
    fn set_parameter(&mut self, name: &str, value: usize) -> Result<()> {
        let ps = ParameterSpace::new().map_err(|e| ferr("ParameterSpace", e))?;
        ps.set_index_parameter(&self.index, name, value as f64).map_err(|e| ferr(&format!("set {name}={value}"), e))
    }

    /// Bytes of vector codes per stored vector (what a full scan reads); HNSW adds its
    /// graph links (about 2 M ids per vector at level 0) on top.
    pub fn code_bytes_per_vector(&self) -> usize {
        match self.kind {
            FaissKind::Flat | FaissKind::Hnsw { .. } | FaissKind::Ivf { sq8: false, .. } => 4 * self.dim,
            FaissKind::Sq8 | FaissKind::Ivf { sq8: true, .. } => self.dim,
        }
    }

    /// Approximate resident bytes: codes, ids (IDMap or IVF list ids) and, for HNSW, the
    /// level-0 links (2 M x 4 B per vector; upper levels add about 1/M more).
    pub fn bytes(&self) -> usize {
        let per = self.code_bytes_per_vector()
            + 8
            + match self.kind {
                FaissKind::Hnsw { m, .. } => 2 * m * 4 + 8,
                _ => 0,
            };
        self.live.len() * per
    }

    /// `ids` with an id repeated in one batch reduced to its last occurrence (the later
    /// vector replaces the earlier, as a second add would).
    fn dedup_last(ids: &[u64], vectors: &[f32], dim: usize) -> Option<(Vec<u64>, Vec<f32>)> {
        let mut seen = HashSet::with_capacity(ids.len());
        if ids.iter().all(|id| seen.insert(*id)) {
            return None;
        }
        seen.clear();
        let mut keep: Vec<usize> = (0..ids.len()).rev().filter(|&i| seen.insert(ids[i])).collect();
        keep.reverse();
        let v = keep.iter().flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied()).collect();
        Some((keep.iter().map(|&i| ids[i]).collect(), v))
    }
}

impl GalleryIndex for FaissIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.live.len()
    }

    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        check_add(self.dim, ids, vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(id) = ids.iter().find(|&&id| id > MAX_ID) {
            return Err(EngineError::Invalid(format!(
                "faiss index: id {id} >= 2^63 (faiss ids are signed; negative ones mean \"no result\")"
            )));
        }
        let dedup = Self::dedup_last(ids, vectors, self.dim);
        let (ids, vectors) = match &dedup {
            Some((i, v)) => (i.as_slice(), v.as_slice()),
            None => (ids, vectors),
        };
        let present: Vec<u64> = ids.iter().copied().filter(|id| self.live.contains(id)).collect();
        if !present.is_empty() && !self.kind.can_remove() {
            return Err(EngineError::Unsupported(format!(
                "faiss {} cannot replace id {} (and {} more): faiss HNSW has no removal; rebuild the index",
                self.kind.description(),
                present[0],
                present.len() - 1
            )));
        }
        if !self.index.is_trained() {
            self.train(vectors)?;
        }
        if !present.is_empty() {
            self.remove(&present)?;
        }
        follow_rayon_threads();
        self.index.add_with_ids(vectors, &to_idx(ids)).map_err(|e| ferr("add", e))?;
        self.live.extend(ids.iter().copied());
        self.generation += 1;
        Ok(())
    }

    fn remove(&mut self, ids: &[u64]) -> Result<usize> {
        // Only live ids reach faiss, and those passed the add-time range check.
        let present: HashSet<u64> = ids.iter().copied().filter(|id| self.live.contains(id)).collect();
        if present.is_empty() {
            return Ok(0);
        }
        if !self.kind.can_remove() {
            return Err(EngineError::Unsupported(format!(
                "faiss {} cannot remove ids: faiss HNSW has no removal; rebuild the index without them \
                 or use faiss Flat / IVF",
                self.kind.description()
            )));
        }
        let present: Vec<u64> = present.into_iter().collect();
        let sel = IdSelector::batch(&to_idx(&present)).map_err(|e| ferr("IDSelectorBatch", e))?;
        let removed = self.index.remove_ids(&sel).map_err(|e| ferr("remove_ids", e))?;
        if removed != present.len() {
            return Err(EngineError::Faiss(format!(
                "remove_ids removed {removed} vectors, expected {} (index out of sync with its id set)",
                present.len()
            )));
        }
        for id in &present {
            self.live.remove(id);
        }
        self.generation += 1;
        Ok(removed)
    }

    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = check_queries(self.dim, queries)?;
        if k == 0 || nq == 0 || self.live.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let k = k.min(self.live.len());
        let mut dist = vec![0f32; nq * k];
        let mut labels = vec![-1i64; nq * k];
        follow_rayon_threads();
        // SAFETY: faiss_Index_search is a const method on CPU indexes (Flat, SQ, HNSW, IVF), safe
        // to call from several threads at once (the faiss crate's ConcurrentIndex does the
        // same); the pointer is live for &self; `queries` holds nq x dim floats (checked
        // above) and `dist` / `labels` nq x k outputs.
        let rc = unsafe {
            faiss_sys::faiss_Index_search(
                self.index.inner_ptr(),
                nq as i64,
                queries.as_ptr(),
                k as i64,
                dist.as_mut_ptr(),
                labels.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(last_error("search"));
        }
        Ok(labels
            .chunks_exact(k)
            .zip(dist.chunks_exact(k))
            .map(|(l, d)| {
                // -1 pads when fewer than k results were found (e.g. IVF with few lists probed).
                l.iter().zip(d).filter(|(id, _)| **id != -1).map(|(&id, &score)| Hit { id: id as u64, score }).collect()
            })
            .collect())
    }

    fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{brute_force, unit_vectors};
    use super::*;

    fn ids(n: usize) -> Vec<u64> {
        // Spread over the whole range faiss accepts (0..2^63) to check the round trip.
        (0..n as u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1) >> 1).collect()
    }

    /// Fraction of queries whose top-1 id matches brute force.
    fn recall_at_1(idx: &FaissIndex, ids: &[u64], data: &[f32], qs: &[f32], dim: usize) -> f64 {
        let got = idx.search(qs, 10).unwrap();
        let hit = qs
            .chunks_exact(dim)
            .zip(&got)
            .filter(|(q, h)| h.first().map(|x| x.id) == Some(brute_force(ids, data, dim, q, 1)[0].id))
            .count();
        hit as f64 / got.len() as f64
    }

    /// Probes near gallery vectors (mated-like): a gallery row plus noise.
    fn near(data: &[f32], dim: usize, nq: usize, seed: u64) -> Vec<f32> {
        let noise = unit_vectors(nq, dim, seed);
        let mut q = Vec::with_capacity(nq * dim);
        for i in 0..nq {
            let row = &data[(i * 37 % (data.len() / dim)) * dim..][..dim];
            let v: Vec<f32> = row.iter().zip(&noise[i * dim..(i + 1) * dim]).map(|(a, b)| a + 0.5 * b).collect();
            q.extend(v);
        }
        q
    }

    #[test]
    fn flat_is_exact_and_ids_round_trip() {
        let (n, dim) = (2000, 64);
        let data = unit_vectors(n, dim, 1);
        let ids = ids(n);
        let mut idx = FaissIndex::new(FaissKind::Flat, dim).unwrap();
        idx.add(&ids, &data).unwrap();
        assert_eq!(idx.len(), n);
        let qs = unit_vectors(50, dim, 2);
        let got = idx.search(&qs, 5).unwrap();
        assert_eq!(got.len(), 50);
        for (q, hits) in qs.chunks_exact(dim).zip(&got) {
            let want = brute_force(&ids, &data, dim, q, 5);
            assert_eq!(hits.len(), 5);
            assert_eq!(hits[0].id, want[0].id, "exact top-1");
            for (g, w) in hits.iter().zip(&want) {
                assert!((g.score - w.score).abs() < 1e-4, "{g:?} vs {w:?}");
            }
        }
        // A gallery vector finds itself, with its (large) id intact.
        let self_hit = idx.search(&data[7 * dim..8 * dim], 1).unwrap();
        assert_eq!(self_hit[0][0].id, ids[7]);
        assert!(ids.iter().any(|&i| i > 1 << 62), "ids cover the upper range");
        assert!(idx.add(&[MAX_ID + 1], &data[..dim]).is_err(), "ids >= 2^63 are refused");
        idx.add(&[MAX_ID], &data[..dim]).unwrap();
        assert_eq!(idx.search(&data[..dim], 2).unwrap()[0].iter().filter(|h| h.id == MAX_ID).count(), 1);
    }

    #[test]
    fn flat_remove_and_replace() {
        let (n, dim) = (500, 32);
        let data = unit_vectors(n, dim, 3);
        let ids = ids(n);
        let mut idx = FaissIndex::new(FaissKind::Flat, dim).unwrap();
        idx.add(&ids, &data).unwrap();
        let g0 = idx.generation();
        assert_eq!(idx.remove(&[ids[10], ids[11], 12345]).unwrap(), 2);
        assert_eq!(idx.remove(&[ids[10]]).unwrap(), 0, "already gone");
        assert_eq!(idx.len(), n - 2);
        assert!(idx.generation() > g0);
        let hit = idx.search(&data[10 * dim..11 * dim], 1).unwrap();
        assert_ne!(hit[0][0].id, ids[10], "a removed id is never returned");
        // Re-adding an existing id replaces its vector: id 20 now carries row 30's vector.
        idx.add(&[ids[20]], &data[30 * dim..31 * dim]).unwrap();
        assert_eq!(idx.len(), n - 2);
        let hits = idx.search(&data[30 * dim..31 * dim], 2).unwrap();
        let got: HashSet<u64> = hits[0].iter().map(|h| h.id).collect();
        assert_eq!(got, HashSet::from([ids[20], ids[30]]));
        let old = idx.search(&data[20 * dim..21 * dim], 1).unwrap();
        assert_ne!(old[0][0].id, ids[20], "the old vector of a replaced id is gone");
        // Same id twice in one batch: the last vector wins.
        idx.add(&[5, 5], &data[..2 * dim]).unwrap();
        let hits = idx.search(&data[dim..2 * dim], 2).unwrap();
        let got: HashSet<u64> = hits[0].iter().map(|h| h.id).collect();
        assert_eq!(got, HashSet::from([5, ids[1]]), "id 5 holds row 1's vector, like ids[1]");
        assert_eq!(idx.len(), n - 1);
    }

    #[test]
    fn hnsw_recall_and_clear_removal_error() {
        let (n, dim) = (3000, 64);
        let data = unit_vectors(n, dim, 4);
        let ids = ids(n);
        let mut idx = FaissIndex::new(FaissKind::Hnsw { m: 16, ef_construction: 100 }, dim).unwrap();
        idx.add(&ids, &data).unwrap();
        idx.set_ef_search(128).unwrap();
        let qs = near(&data, dim, 100, 5);
        let r = recall_at_1(&idx, &ids, &data, &qs, dim);
        assert!(r >= 0.97, "HNSW recall@1 on near-duplicate probes {r}");
        assert_eq!(idx.remove(&[42]).unwrap(), 0, "absent ids: nothing to refuse");
        let e = idx.remove(&[ids[0]]).unwrap_err();
        assert!(matches!(e, EngineError::Unsupported(_)) && e.to_string().contains("HNSW"), "{e}");
        let e = idx.add(&[ids[1]], &data[..dim]).unwrap_err();
        assert!(matches!(e, EngineError::Unsupported(_)), "{e}");
        assert_eq!(idx.len(), n, "refused calls change nothing");
        assert!(idx.set_nprobe(4).is_err());
    }

    #[test]
    fn ivf_trains_on_first_batch_recalls_and_removes() {
        let (n, dim, nlist) = (4000, 32, 32);
        let data = unit_vectors(n, dim, 6);
        let ids = ids(n);
        for sq8 in [false, true] {
            let mut idx = FaissIndex::new(FaissKind::Ivf { nlist, sq8 }, dim).unwrap();
            assert!(!idx.is_trained());
            let e = idx.add(&ids[..10], &data[..10 * dim]).unwrap_err();
            assert!(e.to_string().contains("nlist"), "{e}");
            idx.add(&ids, &data).unwrap();
            assert!(idx.is_trained());
            let qs = near(&data, dim, 100, 7);
            idx.set_nprobe(nlist).unwrap();
            let all = recall_at_1(&idx, &ids, &data, &qs, dim);
            assert!(all >= if sq8 { 0.95 } else { 0.999 }, "IVF probing every list, sq8={sq8}: {all}");
            idx.set_nprobe(8).unwrap();
            let part = recall_at_1(&idx, &ids, &data, &qs, dim);
            assert!(part >= 0.6, "IVF nprobe 8 of {nlist}, sq8={sq8}: {part}");
            assert_eq!(idx.remove(&ids[..100]).unwrap(), 100);
            assert_eq!(idx.len(), n - 100);
            let hits = idx.search(&data[..dim], 10).unwrap();
            assert!(hits[0].iter().all(|h| !ids[..100].contains(&h.id)));
            assert!(idx.set_ef_search(10).is_err());
        }
    }

    #[test]
    fn sq8_and_edge_cases() {
        let (n, dim) = (1000, 48);
        let data = unit_vectors(n, dim, 8);
        let ids = ids(n);
        let mut idx = FaissIndex::new(FaissKind::Sq8, dim).unwrap();
        assert!(idx.search(&data[..dim], 3).unwrap()[0].is_empty(), "empty index");
        idx.add(&ids, &data).unwrap();
        let qs = near(&data, dim, 50, 9);
        assert!(recall_at_1(&idx, &ids, &data, &qs, dim) >= 0.95);
        assert!(idx.add(&[u64::MAX], &data[..dim]).is_err());
        assert_eq!(idx.len(), n, "a refused add changes nothing");
        assert!(idx.search(&data[..dim - 1], 3).is_err(), "bad query shape");
        assert!(idx.search(&data[..dim], 0).unwrap()[0].is_empty());
        assert_eq!(idx.search(&data[..dim], 5000).unwrap()[0].len(), n, "k capped at len");
        assert!(FaissIndex::new(FaissKind::Flat, 0).is_err());
        assert!(FaissIndex::new(FaissKind::Ivf { nlist: 0, sq8: false }, 8).is_err());
    }
}
