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
use epatrol_engine::SubjectId;
use epatrol_engine::identify::{Gallery, decode_f32};
use epatrol_engine::index::SegmentStore;
use epatrol_store::Catalog;
use epatrol_store::model::Modality;

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
    /// Opens (creating, mending or rewriting) the files of `model` and loads every face
    /// template the catalog holds for it into the gallery `make` builds from a training
    /// sample of the stored vectors (row-major, at most `SAMPLE_ROWS`; empty when there
    /// are none). The gallery's index may re-rank from the files' mappings
    /// ([`Gallery::add_segment`]).
    pub async fn open(
        catalog: &Catalog,
        data_dir: &Path,
        model: &str,
        dim: usize,
        make: impl Fn(&[f32]) -> Result<Gallery>,
    ) -> Result<(Self, Gallery, FilesReport)> {
        let dir = dir_for(data_dir, model);
        let owners: HashMap<u64, i64> =
            catalog.template_owners(Modality::Face, model).await?.into_iter().map(|(t, s)| (t as u64, s)).collect();
        let (mut store, mut discarded) = open_or_discard(&dir, dim)?;
        let mut report = mend(&mut store, catalog, model, &owners).await?;
        let mut gallery = make(&sample(&store))?;
        match replay(&store, &owners, &mut gallery) {
            Ok(()) => {}
            Err(e @ (EngineError::Invalid(_) | EngineError::Corrupt { .. })) => {
                // files that verify but do not replay (an id stored twice): start over
                let reason = e.to_string();
                drop(store);
                store = discard(&dir, dim, &reason)?;
                discarded = Some(reason);
                report = mend(&mut store, catalog, model, &owners).await?;
                report.from_files = 0;
                gallery = make(&sample(&store))?;
                replay(&store, &owners, &mut gallery)?;
            }
            Err(e) => return Err(e.into()),
        }
        report.discarded = discarded;
        Ok((FaceFiles { store: Arc::new(Mutex::new(store)) }, gallery, report))
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

/// Opens the files; files that fail verification are deleted (an empty store is
/// returned with the reason). I/O errors are returned: they say nothing about the files.
fn open_or_discard(dir: &Path, dim: usize) -> Result<(SegmentStore, Option<String>)> {
    match SegmentStore::open(dir, dim) {
        Ok(s) => Ok((s, None)),
        Err(e @ (EngineError::Corrupt { .. } | EngineError::Invalid(_))) => {
            let reason = e.to_string();
            Ok((discard(dir, dim, &reason)?, Some(reason)))
        }
        Err(e) => Err(ApiError::Engine(e)),
    }
}

/// Deletes the files (saying why in the log) and opens an empty store in their place.
fn discard(dir: &Path, dim: usize, reason: &str) -> Result<SegmentStore> {
    tracing::warn!(dir = %dir.display(), error = %reason, "face index files discarded; rewriting them from the catalog");
    fs::remove_dir_all(dir).map_err(EngineError::from)?;
    Ok(SegmentStore::open(dir, dim)?)
}

/// Makes the files hold exactly the catalog's templates: appends what they lack (from
/// the catalog), tombstones what the catalog no longer has, merges when due.
async fn mend(
    store: &mut SegmentStore,
    catalog: &Catalog,
    model: &str,
    owners: &HashMap<u64, i64>,
) -> Result<FilesReport> {
    let dim = store.dim();
    let live = store.live_ids();
    let extra: Vec<u64> = live.iter().copied().filter(|t| !owners.contains_key(t)).collect();
    let missing: HashSet<u64> = owners.keys().copied().filter(|t| !live.contains(t)).collect();
    if !missing.is_empty() {
        let mut ids = Vec::with_capacity(missing.len());
        let mut vectors = Vec::with_capacity(missing.len() * dim);
        for row in catalog.templates(Modality::Face, model).await? {
            if missing.contains(&(row.id as u64)) {
                ids.push(row.id as u64);
                vectors.extend(decode_f32(&row.data, dim)?);
            }
        }
        store.append(&ids, &vectors)?;
    }
    store.remove(&extra)?;
    if compaction_due(store) {
        store.compact()?;
    }
    Ok(FilesReport { from_files: live.len(), appended: missing.len(), tombstoned: extra.len(), discarded: None })
}

/// Rows sampled from the files to fit int8 scales on the whole population at once.
const SAMPLE_ROWS: usize = 100_000;

/// Up to [`SAMPLE_ROWS`] stored vectors spread over all segment files (row-major).
fn sample(store: &SegmentStore) -> Vec<f32> {
    let dim = store.dim();
    let segments = || store.files().iter().filter(|f| f.is_segment());
    let rows: usize = segments().map(|f| f.ids().len()).sum();
    let step = rows.div_ceil(SAMPLE_ROWS).max(1);
    segments().flat_map(|f| f.vectors().chunks_exact(dim)).step_by(step).flatten().copied().collect()
}

/// Replays the (mended) files into an empty gallery.
fn replay(store: &SegmentStore, owners: &HashMap<u64, i64>, gallery: &mut Gallery) -> epatrol_engine::Result<()> {
    for f in store.files() {
        if f.is_segment() {
            // rows the catalog no longer has are tombstoned further on (-1: nobody)
            let subjects: Vec<SubjectId> =
                f.ids().iter().map(|t| SubjectId(owners.get(t).copied().unwrap_or(-1))).collect();
            gallery.add_segment(f, &subjects)?;
        } else {
            gallery.remove(f.ids())?;
        }
    }
    Ok(())
}

/// See [`TAIL_SHARE`]: entries (vectors or tombstones) after the first file against its own.
fn compaction_due(store: &SegmentStore) -> bool {
    let files = store.files();
    let Some((first, rest)) = files.split_first() else { return false };
    let tail: usize = rest.iter().map(|f| f.ids().len()).sum();
    !rest.is_empty() && (tail * TAIL_SHARE >= first.ids().len() || files.len() > MAX_FILES)
}
