//! Gallery search indexes (batch-first).
//!
//! Every index implements [`GalleryIndex`]: add `n` vectors with ids, remove ids, and
//! search `n` queries at once for their top-k by inner product (= cosine on
//! L2-normalised vectors). [`FlatIndex`] is the exact f32 reference the others are
//! tested against.
//!
//! With the cargo feature `faiss`, `FaissIndex` puts faiss's Flat, SQ8, HNSW and IVF
//! indexes behind the same trait, for comparison in one binary.

#[cfg(feature = "faiss")]
mod faiss;
mod flat;
mod hugevec;
mod ivf;
mod kmeans;
mod qflat;
mod quant;
mod rows;
mod segment;
mod store;
mod topk;

#[cfg(feature = "faiss")]
pub use faiss::{FaissIndex, FaissKind};
pub use flat::FlatIndex;
pub use ivf::IvfIndex;
pub use qflat::QuantFlatIndex;
pub use quant::{Int8Scales, QuantKind};
pub use segment::{SegmentFile, SegmentStore};
pub use topk::TopK;

use std::sync::Arc;

use crate::{EngineError, Result};

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The id the vector was added with.
    pub id: u64,
    /// Inner product with the query (cosine on L2-normalised vectors); higher = better.
    pub score: f32,
}

/// Batch-first gallery index.
pub trait GalleryIndex: Send + Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Number of live (not removed) vectors.
    fn len(&self) -> usize;
    /// True when the index holds no live vectors.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Adds n = ids.len() vectors; `vectors.len() == n * dim`. Re-adding an existing id replaces it.
    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()>;
    /// Adds a segment file's vectors ([`SegmentStore`]); indexes that re-rank from exact
    /// rows may read them from the file's mapping instead of copying (the default copies).
    fn add_segment(&mut self, file: &Arc<SegmentFile>) -> Result<()> {
        self.add(file.ids(), file.vectors())
    }
    /// Removes ids; returns how many were present.
    fn remove(&mut self, ids: &[u64]) -> Result<usize>;
    /// Searches n = queries.len()/dim queries; per query the top-k hits, best first.
    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>>;
    /// Rows a scan reads: live vectors plus tombstones not yet compacted away.
    fn slots(&self) -> usize {
        self.len()
    }
    /// Counts changes (adds and removals): a [`GalleryIndex::compacted`] copy built at
    /// one generation may replace the index only while it is still at that generation.
    fn generation(&self) -> u64 {
        0
    }
    /// A copy without the space that removals left behind, when that is worth building;
    /// `None` otherwise. It takes `&self`, so searches go on (under a read lock) while
    /// the copy is built; installing it is a pointer swap (see `identify::Gallery`).
    fn compacted(&self) -> Option<Box<dyn GalleryIndex>> {
        None
    }
}

/// Checks an `add` call's shapes and values; returns n.
pub(crate) fn check_add(dim: usize, ids: &[u64], vectors: &[f32]) -> Result<usize> {
    let n = ids.len();
    if vectors.len() != n * dim {
        return Err(EngineError::Invalid(format!(
            "add: {} ids need {} x {dim} = {} floats, got {}",
            n,
            n,
            n * dim,
            vectors.len()
        )));
    }
    if let Some(i) = vectors.iter().position(|x| !x.is_finite()) {
        return Err(EngineError::Invalid(format!(
            "add: vector {} has a non-finite component at dimension {}",
            i / dim,
            i % dim
        )));
    }
    Ok(n)
}

/// Checks a `search` call's shape; returns the number of queries.
pub(crate) fn check_queries(dim: usize, queries: &[f32]) -> Result<usize> {
    if !queries.len().is_multiple_of(dim) {
        return Err(EngineError::Invalid(format!(
            "search: {} floats is not a whole number of {dim}-dimensional queries",
            queries.len()
        )));
    }
    if queries.iter().any(|x| !x.is_finite()) {
        return Err(EngineError::Invalid("search: query has a non-finite component".into()));
    }
    Ok(queries.len() / dim)
}

/// Rejects a zero dimension at construction.
pub(crate) fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(EngineError::Invalid("index dimension must be > 0".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
