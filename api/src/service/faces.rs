//! The face side of identification: extraction (through the [`Extractor`]), the
//! in-memory gallery, its segment files and its background compaction.
//!
//! The gallery is derived state: loaded at start from its segment files
//! ([`FaceFiles`]), which are checked against the catalog, the source of truth.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use epatrol_engine::compaction::Compactable;
use epatrol_engine::face::FaceTemplate;
use epatrol_engine::identify::{Candidate, Gallery};
use epatrol_engine::models::Calibration;
use epatrol_engine::{EngineError, SubjectId};
use epatrol_store::Catalog;

use super::compaction::Compactor;
use super::extractor::Extractor;
use super::face_files::{FaceFiles, FilesReport};
use super::identification::Probe;
use super::probed::Probed;
use crate::error::Result;

/// How the in-memory face gallery is searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceIndex {
    /// int8 codes scanned, shortlist re-ranked with exact f32 (same scores, 1/4 the bytes).
    #[default]
    Int8,
    /// Exact f32 scan of every template.
    Exact,
}

/// The face extractor, gallery and files.
pub struct FaceSide {
    extractor: Arc<dyn Extractor>,
    gallery: Arc<RwLock<Gallery>>,
    /// Builds compacted indexes on a background thread, one at a time.
    compactor: Compactor<Gallery>,
    /// The gallery's segment files.
    files: FaceFiles,
    /// What opening them found.
    files_report: FilesReport,
}

impl FaceSide {
    /// Loads the gallery of the extractor's face model from its files under `data_dir`,
    /// mended against the catalog.
    pub async fn open(
        catalog: &Catalog,
        data_dir: &Path,
        extractor: Arc<dyn Extractor>,
        index: FaceIndex,
    ) -> Result<Self> {
        let dim = extractor.face_dim();
        // int8 scales are fitted on a sample of the whole enrolled population at once
        let make = |sample: &[f32]| -> Result<Gallery> {
            Ok(match index {
                FaceIndex::Exact => Gallery::exact(dim),
                FaceIndex::Int8 if sample.is_empty() => Gallery::int8(dim)?,
                FaceIndex::Int8 => Gallery::int8_trained(dim, sample)?,
            })
        };
        let (files, gallery, files_report) =
            FaceFiles::open(catalog, data_dir, extractor.face_model(), dim, make).await?;
        if files_report != FilesReport::default() {
            tracing::info!(report = ?files_report, "face index files loaded");
        }
        let gallery = Arc::new(RwLock::new(gallery));
        Ok(Self { extractor, compactor: Compactor::new(Arc::clone(&gallery), "face"), gallery, files, files_report })
    }

    /// Catalog `model` of the face templates.
    pub fn model(&self) -> &str {
        self.extractor.face_model()
    }

    /// The decision threshold and how it was derived.
    pub fn calibration(&self) -> &Calibration {
        self.extractor.face_calibration()
    }

    /// Extracts the template of one photo.
    pub fn extract(&self, bytes: &[u8]) -> std::result::Result<FaceTemplate, EngineError> {
        self.extractor.face(bytes)
    }

    /// Extracts face templates from many images in parallel (both cores).
    pub fn extract_many(&self, probes: &[Probe]) -> Vec<std::result::Result<FaceTemplate, EngineError>> {
        probes.par_iter().map(|p| self.extractor.face(&p.bytes)).collect()
    }

    /// The model phase of a face identification: extract, then search the top `k`; an
    /// unusable photo is [`Probed::Rejected`], an unreadable file an error.
    pub fn probe(&self, bytes: &[u8], k: usize) -> Result<Probed> {
        Probed::from_extraction(self.extract(bytes), |template| {
            let candidates = self.search(&template.embedding, k)?;
            let quality = template.quality.as_ref().and_then(|q| serde_json::to_value(q).ok());
            Ok(Probed::Searched { candidates, quality, times: template.times })
        })
    }

    /// Top-`k` subjects (at least one) for one embedding, best first.
    pub fn search(&self, embedding: &[f32], k: usize) -> Result<Vec<Candidate>> {
        let g = self.gallery.read().unwrap_or_else(|p| p.into_inner());
        Ok(g.search(embedding, k.max(1))?.pop().unwrap_or_default())
    }

    /// Adds the templates `tids` of catalog subject `subject_id` (`vectors` row-major) to
    /// the gallery, then to its files.
    pub async fn add(&self, subject_id: i64, tids: Vec<u64>, vectors: Vec<f32>) -> Result<()> {
        let n = tids.len();
        self.gallery.write().unwrap_or_else(|p| p.into_inner()).add(
            &tids,
            &vec![SubjectId(subject_id); n],
            &vectors,
        )?;
        self.files.append(tids, vectors).await;
        Ok(())
    }

    /// Removes templates from the gallery and its files; returns how many the gallery
    /// held. A compacted copy is then built off the search path when enough rows are dead.
    pub async fn remove(&self, tids: Vec<u64>) -> Result<usize> {
        let removed = self.gallery.write().unwrap_or_else(|p| p.into_inner()).remove(&tids)?;
        self.files.remove(tids).await;
        if removed > 0 {
            self.compactor.start();
        }
        Ok(removed)
    }

    /// (subjects, templates) in the gallery.
    pub fn size(&self) -> (usize, usize) {
        let g = self.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.subjects(), g.len())
    }

    /// Templates in the gallery and the rows a search scans (the difference is removed
    /// templates awaiting compaction).
    pub fn slots(&self) -> (usize, usize) {
        let g = self.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.slots())
    }

    /// What opening the files found and mended, and how many files there are now.
    pub fn files(&self) -> (&FilesReport, usize) {
        (&self.files_report, self.files.files())
    }
}
