//! The fingerprint side of identification: extraction (LEADER, through the
//! [`Extractor`]), the MCC gallery (derived state, rebuilt at start from the catalog's
//! ISO/IEC 19794-2 templates) and the decision threshold.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use epatrol_engine::EngineError;
use epatrol_engine::SubjectId;
use epatrol_engine::compaction::Compactable;
use epatrol_engine::face::StageTimes;
use epatrol_engine::finger::Extracted;
use epatrol_engine::finger::index::FingerIndex;
use epatrol_engine::finger::iso19794::{self, View};
use epatrol_engine::finger::mcc::MccTemplate;
use epatrol_engine::identify::Candidate;
use epatrol_engine::models::Calibration;
use epatrol_store::Catalog;
use epatrol_store::model::Modality;

use super::compaction::Compactor;
use super::extractor::Extractor;
use super::probed::Probed;
use crate::error::Result;

/// Catalog `model` of finger templates: LEADER minutiae stored as ISO/IEC 19794-2:2005,
/// compared with MCC (the manifest entry of the extractor holds the calibration).
/// (The engine's default LEADER model: gallery and probes come from the same entry.)
pub const FINGER_MODEL: &str = epatrol_engine::finger::leader::DEFAULT_MODEL;
/// Gallery templates fully matched per probe finger after the LSH candidate stage: 3 %
/// of the gallery, at least 256 and at most 3000. At 100 000 templates a 3000 shortlist
/// keeps the mate for 98.3 % of the probes (mated rank-1 0.992 of the 1:1 rate) and
/// answers in ~110 ms on 2 cores; 2000 lost the mate for 3.3 % (docs/fingerprint.md).
pub fn shortlist(gallery_templates: usize) -> usize {
    (gallery_templates * 3 / 100).clamp(256, 3000)
}

/// A fingerprint image with its finger position (ISO: 0 unknown, 1 right thumb … 10
/// left little).
#[derive(Debug, Clone)]
pub struct FingerProbe {
    /// File name or label for messages.
    pub label: String,
    /// Encoded image bytes (PNG, BMP, TIFF, PGM, JPEG).
    pub bytes: Vec<u8>,
    /// Finger position code.
    pub position: u8,
}

/// The print extractor and the finger gallery.
pub struct FingerSide {
    extractor: Arc<dyn Extractor>,
    index: Arc<RwLock<FingerIndex>>,
    compactor: Compactor<FingerIndex>,
}

impl FingerSide {
    /// Rebuilds the finger gallery from the catalog.
    pub async fn open(catalog: &Catalog, extractor: Arc<dyn Extractor>) -> Result<Self> {
        let mut index = FingerIndex::new();
        for row in catalog.templates(Modality::Finger, FINGER_MODEL).await? {
            let rec = iso19794::decode(&row.data)?;
            for v in rec.views {
                index.add(SubjectId(row.subject_id), v.finger_position, MccTemplate::new(&v.template));
            }
        }
        let index = Arc::new(RwLock::new(index));
        let compactor = Compactor::new(Arc::clone(&index), "finger");
        Ok(Self { extractor, index, compactor })
    }

    /// The per-finger decision threshold and its derivation.
    pub fn calibration(&self) -> &Calibration {
        self.extractor.finger_calibration()
    }

    /// Templates in the gallery.
    pub fn len(&self) -> usize {
        self.index.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when no print is enrolled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Extracts and quality-checks one print (`Rejected` with a reason when unusable).
    pub fn extract(&self, p: &FingerProbe) -> std::result::Result<Extracted, EngineError> {
        self.extractor.finger(&p.bytes)
    }

    /// The model phase of a print identification: extract, then search the top `k`; an
    /// unusable print is [`Probed::Rejected`], an unreadable file an error.
    pub fn probe(&self, p: &FingerProbe, k: usize) -> Result<Probed> {
        let t = Instant::now();
        Probed::from_extraction(self.extract(p), |e| {
            let extract_ms = t.elapsed().as_secs_f64() * 1e3;
            let candidates = self.search(p.position, &e, k);
            let quality = serde_json::to_value(&e.quality).ok();
            Ok(Probed::Searched {
                candidates,
                quality,
                times: StageTimes { embed_ms: extract_ms, ..Default::default() },
            })
        })
    }

    /// The catalog form of an extracted print: a one-view ISO/IEC 19794-2:2005 record.
    pub fn encode(position: u8, e: &Extracted) -> Result<Vec<u8>> {
        let view = View {
            finger_position: position,
            view_number: 0,
            impression_type: 0,
            quality: e.quality.score,
            template: e.template.clone(),
        };
        Ok(iso19794::encode_iso2005(&[view])?)
    }

    /// Adds enrolled prints of catalog subject `subject_id` to the gallery.
    pub fn add(&self, subject_id: i64, prints: &[(u8, &Extracted)]) {
        let mut g = self.index.write().unwrap_or_else(|p| p.into_inner());
        for (pos, e) in prints {
            g.add(SubjectId(subject_id), *pos, MccTemplate::new(&e.template));
        }
    }

    /// Removes every print of catalog subject `subject_id`; returns how many. Their
    /// templates leave memory at once; the posting lists are compacted off the search
    /// path once a quarter of the gallery is removed.
    pub fn remove(&self, subject_id: i64) -> usize {
        let n = self.index.write().unwrap_or_else(|p| p.into_inner()).remove_subject(SubjectId(subject_id));
        if n > 0 {
            self.compactor.start();
        }
        n
    }

    /// Templates in the gallery and the slots a search may visit (the difference is
    /// removed templates awaiting compaction).
    pub fn size(&self) -> (usize, usize) {
        let g = self.index.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.slots())
    }

    /// Top-`k` subjects for one probe print, best first, as catalog subject ids.
    pub fn search(&self, position: u8, e: &Extracted, k: usize) -> Vec<Candidate> {
        let probe = [(position, MccTemplate::new(&e.template))];
        let g = self.index.read().unwrap_or_else(|p| p.into_inner());
        let (hits, _) = g.search(&probe, shortlist(g.len()), k.max(1));
        hits.into_iter().map(|h| Candidate { subject_id: h.subject, score: h.score, template_id: 0 }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::shortlist;

    #[test]
    fn shortlist_is_three_percent_within_bounds() {
        assert_eq!(shortlist(0), 256);
        assert_eq!(shortlist(10_000), 300);
        assert_eq!(shortlist(100_000), 3000);
        assert_eq!(shortlist(5_000_000), 3000);
    }
}
