//! Building each index kind under test, timed.

use std::time::Instant;

use anyhow::bail;
#[cfg(feature = "faiss")]
use epatrol_engine::index::{FaissIndex, FaissKind};
use epatrol_engine::index::{FlatIndex, GalleryIndex, IvfIndex, QuantFlatIndex, QuantKind};
use serde_json::{Value, json};

use super::{IndexArgs, log, pool};

/// The concrete index under test (IVF stays typed so the sweep can change nprobe).
pub(super) enum Any {
    Flat(FlatIndex),
    Quant(QuantFlatIndex),
    Ivf(IvfIndex),
    #[cfg(feature = "faiss")]
    Faiss(FaissIndex),
}

impl Any {
    pub(super) fn dyn_ref(&self) -> &dyn GalleryIndex {
        match self {
            Any::Flat(i) => i,
            Any::Quant(i) => i,
            Any::Ivf(i) => i,
            #[cfg(feature = "faiss")]
            Any::Faiss(i) => i,
        }
    }
    /// (resident bytes, bytes scanned per vector by one query over the whole gallery).
    pub(super) fn bytes(&self, d: usize) -> (usize, usize) {
        match self {
            Any::Flat(i) => (i.len() * (4 * d + 8), 4 * d),
            Any::Quant(i) => (i.bytes(), i.scanned_bytes_per_vector()),
            Any::Ivf(i) => (i.bytes(), i.scanned_bytes_per_vector()),
            // Codes read per vector visited; HNSW and IVF visit only part of the gallery.
            #[cfg(feature = "faiss")]
            Any::Faiss(i) => (i.bytes(), i.code_bytes_per_vector()),
        }
    }
}

/// A built index and its build timings.
pub(super) struct Built {
    pub(super) index: Any,
    pub(super) build: Value,
}

pub(super) fn build(
    a: &IndexArgs,
    kind: &str,
    d: usize,
    nlist: usize,
    ids: &[u64],
    data: &[f32],
) -> anyhow::Result<Built> {
    log(&format!("{kind}: build"));
    let t0 = Instant::now();
    let (index, train_s) = pool(a.build_threads)?.install(|| -> anyhow::Result<(Any, f64)> {
        Ok(match kind {
            "flat" => {
                let mut i = FlatIndex::try_new(d)?;
                i.add(ids, data)?;
                (Any::Flat(i), 0.0)
            }
            "int8" | "f16" => {
                let q = if kind == "int8" { QuantKind::Int8 } else { QuantKind::F16 };
                let mut i = QuantFlatIndex::new(q, d)?;
                if let Some(r) = a.rerank {
                    i.set_rerank(r);
                }
                i.add(ids, data)?;
                (Any::Quant(i), 0.0)
            }
            "ivf-int8" | "ivf-f16" => {
                let q = if kind == "ivf-int8" { QuantKind::Int8 } else { QuantKind::F16 };
                let mut i = IvfIndex::new(q, d, nlist)?;
                if let Some(r) = a.rerank {
                    i.set_rerank(r);
                }
                i.train(data)?;
                let train_s = t0.elapsed().as_secs_f64();
                i.add(ids, data)?;
                (Any::Ivf(i), train_s)
            }
            #[cfg(feature = "faiss")]
            k if k.starts_with("faiss-") => {
                let fk = faiss_kind(a, k, nlist)?;
                let mut i = FaissIndex::new(fk, d)?;
                let mut train_s = 0.0;
                if !i.is_trained() {
                    i.train(data)?;
                    train_s = t0.elapsed().as_secs_f64();
                }
                i.add(ids, data)?;
                (Any::Faiss(i), train_s)
            }
            #[cfg(not(feature = "faiss"))]
            k if k.starts_with("faiss-") => bail!(
                "index kind {k:?} needs faiss, which this binary was built without: rebuild with \
                 `cargo build --release -p epatrol-api --features faiss` (after `bash scripts/install-deps.sh --faiss`; \
                 see docs/index.md)"
            ),
            other => bail!(
                "unknown index kind {other:?} (flat, int8, f16, ivf-int8, ivf-f16; with --features faiss: \
                 faiss-flat, faiss-sq8, faiss-hnsw, faiss-ivf, faiss-ivf-sq8)"
            ),
        })
    })?;
    let build_s = t0.elapsed().as_secs_f64();
    log(&format!("{kind}: built in {build_s:.1}s"));
    Ok(Built {
        index,
        build: json!({"build_s": build_s, "train_s": train_s, "add_s": build_s - train_s, "build_threads": a.build_threads}),
    })
}

/// The faiss index a `faiss-*` kind names.
#[cfg(feature = "faiss")]
pub(super) fn faiss_kind(a: &IndexArgs, kind: &str, nlist: usize) -> anyhow::Result<FaissKind> {
    Ok(match kind {
        "faiss-flat" => FaissKind::Flat,
        "faiss-sq8" => FaissKind::Sq8,
        "faiss-hnsw" => FaissKind::Hnsw { m: a.hnsw_m, ef_construction: a.hnsw_efc },
        "faiss-ivf" => FaissKind::Ivf { nlist, sq8: false },
        "faiss-ivf-sq8" => FaissKind::Ivf { nlist, sq8: true },
        other => {
            bail!("unknown faiss index kind {other:?} (faiss-flat, faiss-sq8, faiss-hnsw, faiss-ivf, faiss-ivf-sq8)")
        }
    })
}
