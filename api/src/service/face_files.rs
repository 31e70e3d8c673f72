//! The face gallery on disk: segment files (engine `SegmentStore`) under
//! `<data>/index/face-<model>/`, so a restart reads mapped files instead of decoding every
//! template from SQLite.
//!
//! The catalog stays the source of truth. At open the files are checked against the
//! catalog's template ids and mended: templates the files lack (a crash between the
//! catalog commit and the file write) are appended from the catalog, templates the
//! catalog no longer has are tombstoned. Files that fail verification (torn, corrupted,
//! another dimension) are deleted and rewritten from the catalog, never served. A failed
//! write at enrolment or deletion is therefore logged, not returned: the request already
//! changed the catalog and the gallery, and the next open repairs the files.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use epatrol_engine::EngineError;
use epatrol_engine::identify::decode_f32;
use epatrol_engine::index::{FlatIndex, GalleryIndex, SegmentStore};
use epatrol_store::Catalog;

use crate::error::{ApiError, Result};

/// Files are merged into one segment once those written after the first hold a quarter
/// as many entries as it does: each rewrite then covers ≥ 1.25x the previous one, so
/// the bytes rewritten stay a small multiple of the gallery (amortised O(1) per
/// template) instead of a full rewrite every few enrolments.
const TAIL_SHARE: usize = 4;
/// … or once there are this many files, whatever their sizes (each is one mapping).
const MAX_FILES: usize = 4096;

/// What opening the files found and mended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilesReport {
    /// Templates read from the files.
    pub from_files: usize,
    /// Catalog templates the files lacked, appended.
    pub appended: usize,
    /// Templates the files had and the catalog no longer has, tombstoned.
    pub tombstoned: usize,
    /// Why the files were discarded and rewritten from the catalog, if they were.
    pub discarded: Option<String>,
}

/// The face templates as loaded: ids, owners and row-major vectors, in one order.
pub struct Loaded {
    /// Template ids.
    pub ids: Vec<u64>,
    /// Subject of each template.
    pub owners: Vec<i64>,
    /// `ids.len() * dim` values.
    pub vectors: Vec<f32>,
    /// What was found and mended.
    pub report: FilesReport,
}

/// The open segment store of the face gallery.
pub struct FaceFiles {
    store: Arc<Mutex<SegmentStore>>,
}

/// The directory of a model's files (model names are manifest names; anything outside
/// `[A-Za-z0-9._-]` is replaced so a name can never leave `index/`).
pub fn dir_for(data_dir: &Path, model: &str) -> PathBuf {
    let safe: String =
        model.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    data_dir.join("index").join(format!("face-{}", safe.trim_start_matches('.')))
}

impl FaceFiles {
    /// Opens (creating, mending or rewriting) the files of `model` and returns every face
    /// template the catalog holds for it.
    pub async fn open(catalog: &Catalog, data_dir: &Path, model: &str, dim: usize) -> Result<(Self, Loaded)> {
        let dir = dir_for(data_dir, model);
        let owners: HashMap<u64, i64> =
            catalog.template_owners("face", model).await?.into_iter().map(|(t, s)| (t as u64, s)).collect();
        let (mut store, mut flat, discarded) = read_or_discard(&dir, dim)?;
        let from_files = flat.len();
        let extra: Vec<u64> = flat.ids().iter().copied().filter(|t| !owners.contains_key(t)).collect();
        let missing: HashSet<u64> = owners.keys().copied().filter(|&t| flat.get(t).is_none()).collect();
        if !missing.is_empty() {
            let mut ids = Vec::with_capacity(missing.len());
            let mut vectors = Vec::with_capacity(missing.len() * dim);
            for row in catalog.templates("face", model).await? {
                if missing.contains(&(row.id as u64)) {
                    ids.push(row.id as u64);
                    vectors.extend(decode_f32(&row.data, dim)?);
                }
            }
            store.append(&ids, &vectors)?;
            flat.add(&ids, &vectors)?;
        }
        if !extra.is_empty() {
            store.remove(&extra)?;
            flat.remove(&extra)?;
        }
        if compaction_due(&store) {
            store.compact()?;
        }
        let ids = flat.ids().to_vec();
        let owners = ids.iter().map(|t| owners[t]).collect();
        let report = FilesReport { from_files, appended: missing.len(), tombstoned: extra.len(), discarded };
        let loaded = Loaded { ids, owners, vectors: flat.vectors().to_vec(), report };
        Ok((FaceFiles { store: Arc::new(Mutex::new(store)) }, loaded))
    }

    /// Persists newly enrolled templates (`vectors` row-major); see the module doc for
    /// why a failure is only logged.
    pub async fn append(&self, ids: Vec<u64>, vectors: Vec<f32>) {
        self.write("append", move |s| s.append(&ids, &vectors)).await;
    }

    /// Persists removals.
    pub async fn remove(&self, ids: Vec<u64>) {
        self.write("remove", move |s| s.remove(&ids)).await;
    }

    /// Number of files (segments and tombstone lists) on disk.
    pub fn files(&self) -> usize {
        self.store.lock().unwrap_or_else(|p| p.into_inner()).files().len()
    }

    /// Runs a write (and a merge when one is due) off the async threads: both fsync.
    async fn write(
        &self,
        what: &'static str,
        op: impl FnOnce(&mut SegmentStore) -> epatrol_engine::Result<()> + Send + 'static,
    ) {
        let store = Arc::clone(&self.store);
        let job = tokio::task::spawn_blocking(move || {
            let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
            op(&mut s)?;
            if compaction_due(&s) { s.compact() } else { Ok(()) }
        });
        match job.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(op = what, error = %e, "face index files not updated; repaired from the catalog at next start")
            }
            Err(e) => {
                tracing::warn!(op = what, error = %e, "face index file writer failed; repaired from the catalog at next start")
            }
        }
    }
}

/// Opens and replays the files; files that fail verification are deleted (an empty store
/// is returned with the reason). I/O errors are returned: they say nothing about the files.
fn read_or_discard(dir: &Path, dim: usize) -> Result<(SegmentStore, FlatIndex, Option<String>)> {
    let read = || -> epatrol_engine::Result<(SegmentStore, FlatIndex)> {
        let store = SegmentStore::open(dir, dim)?;
        let mut flat = FlatIndex::try_new(dim)?;
        store.replay(&mut flat)?;
        Ok((store, flat))
    };
    match read() {
        Ok((s, f)) => Ok((s, f, None)),
        Err(e @ (EngineError::Corrupt { .. } | EngineError::Invalid(_))) => {
            let reason = e.to_string();
            tracing::warn!(dir = %dir.display(), error = %reason, "face index files discarded; rewriting them from the catalog");
            fs::remove_dir_all(dir).map_err(EngineError::from)?;
            Ok((SegmentStore::open(dir, dim)?, FlatIndex::try_new(dim)?, Some(reason)))
        }
        Err(e) => Err(ApiError::Engine(e)),
    }
}

/// See [`TAIL_SHARE`]: entries (vectors or tombstones) after the first file against its own.
fn compaction_due(store: &SegmentStore) -> bool {
    let files = store.files();
    let Some((first, rest)) = files.split_first() else { return false };
    let tail: usize = rest.iter().map(|f| f.ids().len()).sum();
    !rest.is_empty() && (tail * TAIL_SHARE >= first.ids().len() || files.len() > MAX_FILES)
}
