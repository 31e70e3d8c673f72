//! Subject-level 1:N search: many templates per person, subject score = best template,
//! top-k candidates, and a decision against a calibrated threshold.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::compaction::Compactable;
use crate::error::{EngineError, Result};
use crate::index::{FlatIndex, GalleryIndex, QuantFlatIndex, QuantKind, SegmentFile};
use crate::subject::SubjectId;

/// One candidate person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    /// Subject (catalog row id).
    pub subject_id: SubjectId,
    /// Best score over the subject's templates.
    pub score: f32,
    /// The template that scored it.
    pub template_id: u64,
}

/// The outcome of a search against a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// The top candidate is at or above the threshold.
    Match {
        /// Who.
        subject_id: SubjectId,
        /// Their score.
        score: f32,
    },
    /// Nobody reached the threshold.
    NoMatch,
}

/// Decides on candidates sorted best first.
pub fn decide(candidates: &[Candidate], threshold: f32) -> Decision {
    match candidates.first() {
        Some(c) if c.score >= threshold => Decision::Match { subject_id: c.subject_id, score: c.score },
        _ => Decision::NoMatch,
    }
}

/// A gallery of templates grouped by subject over any [`GalleryIndex`].
pub struct Gallery {
    index: Box<dyn GalleryIndex>,
    owner: HashMap<u64, SubjectId>,
    templates_per_subject: HashMap<SubjectId, usize>,
}

impl Gallery {
    /// An empty exact (f32 flat) gallery of dimension `dim`.
    pub fn exact(dim: usize) -> Self {
        Self::with_index(Box::new(FlatIndex::new(dim)))
    }

    /// An empty gallery scanning int8 codes with an exact f32 re-rank of a shortlist:
    /// a quarter of the bytes per query, scores identical to [`Gallery::exact`] (see
    /// `docs/index.md`). int8 scales are fitted on the first `add` and re-fitted each
    /// time the gallery has grown tenfold (up to 100 000), so load the initial gallery in
    /// one call.
    pub fn int8(dim: usize) -> Result<Self> {
        Ok(Self::with_index(Box::new(QuantFlatIndex::new(QuantKind::Int8, dim)?)))
    }

    /// [`Gallery::int8`] with its int8 scales fitted on `sample` (row-major vectors, e.g.
    /// spread over the whole population about to be loaded) instead of the first add.
    pub fn int8_trained(dim: usize, sample: &[f32]) -> Result<Self> {
        let mut index = QuantFlatIndex::new(QuantKind::Int8, dim)?;
        index.train(sample);
        Ok(Self::with_index(Box::new(index)))
    }

    /// An empty gallery over the given index.
    pub fn with_index(index: Box<dyn GalleryIndex>) -> Self {
        Self { index, owner: HashMap::new(), templates_per_subject: HashMap::new() }
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.index.dim()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    /// True when no template is enrolled.
    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Number of distinct subjects.
    pub fn subjects(&self) -> usize {
        self.templates_per_subject.len()
    }

    /// Adds templates (`vectors.len() == ids.len() * dim`) owned by `subjects[i]`.
    pub fn add(&mut self, template_ids: &[u64], subjects: &[SubjectId], vectors: &[f32]) -> Result<()> {
        self.check_new(template_ids, subjects)?;
        self.index.add(template_ids, vectors)?;
        self.own(template_ids, subjects);
        Ok(())
    }

    /// Adds a segment file's templates, owned by `subjects[i]`; the index may re-rank from
    /// the file's mapping instead of copying the vectors ([`GalleryIndex::add_segment`]).
    pub fn add_segment(&mut self, file: &Arc<SegmentFile>, subjects: &[SubjectId]) -> Result<()> {
        self.check_new(file.ids(), subjects)?;
        self.index.add_segment(file)?;
        self.own(file.ids(), subjects);
        Ok(())
    }

    fn check_new(&self, template_ids: &[u64], subjects: &[SubjectId]) -> Result<()> {
        if template_ids.len() != subjects.len() {
            return Err(EngineError::Invalid("one subject per template id is needed".into()));
        }
        if let Some(id) = template_ids.iter().find(|id| self.owner.contains_key(id)) {
            return Err(EngineError::Invalid(format!("template {id} is already in the gallery")));
        }
        Ok(())
    }

    fn own(&mut self, template_ids: &[u64], subjects: &[SubjectId]) {
        for (&t, &s) in template_ids.iter().zip(subjects) {
            self.owner.insert(t, s);
            *self.templates_per_subject.entry(s).or_default() += 1;
        }
    }

    /// Removes templates (a deleted subject's); ids not in the gallery are ignored.
    /// Returns how many were removed.
    pub fn remove(&mut self, template_ids: &[u64]) -> Result<usize> {
        let present: Vec<u64> = template_ids.iter().copied().filter(|t| self.owner.contains_key(t)).collect();
        self.index.remove(&present)?;
        for t in &present {
            if let Some(s) = self.owner.remove(t)
                && let Some(n) = self.templates_per_subject.get_mut(&s)
            {
                *n -= 1;
                if *n == 0 {
                    self.templates_per_subject.remove(&s);
                }
            }
        }
        Ok(present.len())
    }

    /// Adds one template stored as little-endian f32 bytes (the catalog encoding).
    pub fn add_encoded(&mut self, template_id: u64, subject: SubjectId, bytes: &[u8]) -> Result<()> {
        let v = decode_f32(bytes, self.dim())?;
        self.add(&[template_id], &[subject], &v)
    }

    /// Top-`k` subjects for each of the n queries (`queries.len() == n * dim`).
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Candidate>>> {
        if k == 0 || self.is_empty() {
            let n = queries.len() / self.dim().max(1);
            return Ok(vec![Vec::new(); n]);
        }
        // Enough templates to be sure of k distinct subjects: the top k·m templates
        // contain the best template of each of the top-k subjects when no subject has
        // more than m templates.
        let m = self.templates_per_subject.values().copied().max().unwrap_or(1);
        let hits = self.index.search(queries, (k * m).min(self.len()))?;
        Ok(hits
            .into_iter()
            .map(|hs| {
                let mut seen = HashMap::new();
                let mut out = Vec::with_capacity(k);
                for h in hs {
                    let Some(&s) = self.owner.get(&h.id) else { continue };
                    if seen.insert(s, ()).is_none() {
                        out.push(Candidate { subject_id: s, score: h.score, template_id: h.id });
                        if out.len() == k {
                            break;
                        }
                    }
                }
                out
            })
            .collect())
    }
}

/// Encodes an embedding as little-endian f32 bytes for the catalog.
pub fn encode_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes little-endian f32 bytes, checking the dimension.
pub fn decode_f32(bytes: &[u8], dim: usize) -> Result<Vec<f32>> {
    if bytes.len() != dim * 4 {
        return Err(EngineError::Invalid(format!("stored template has {} bytes, expected {}", bytes.len(), dim * 4)));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// The compacted copy is the index without removed rows (see [`GalleryIndex::compacted`]).
impl Compactable for Gallery {
    type Copy = Box<dyn GalleryIndex>;

    fn compaction(&self) -> Option<(u64, Box<dyn GalleryIndex>)> {
        self.index.compacted().map(|c| (self.index.generation(), c))
    }

    fn install_compaction(&mut self, generation: u64, index: Box<dyn GalleryIndex>) -> bool {
        let fresh = self.index.generation() == generation && index.len() == self.index.len();
        if fresh {
            self.index = index;
        }
        fresh
    }

    fn slots(&self) -> usize {
        self.index.slots()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S7: SubjectId = SubjectId(7);
    const S9: SubjectId = SubjectId(9);

    fn unit(dim: usize, hot: usize, w: f32) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[hot] = w;
        v[(hot + 1) % dim] = (1.0 - w * w).sqrt();
        v
    }

    #[test]
    fn best_template_scores_the_subject_and_subjects_are_distinct() {
        let mut g = Gallery::exact(4);
        // subject 7 has two templates, one close to the query; subject 9 one template
        let vs = [unit(4, 0, 1.0), unit(4, 2, 1.0), unit(4, 0, 0.6)].concat();
        g.add(&[1, 2, 3], &[S7, S7, S9], &vs).unwrap();
        let res = g.search(&unit(4, 0, 1.0), 5).unwrap();
        assert_eq!(res[0].len(), 2);
        assert_eq!((res[0][0].subject_id, res[0][0].template_id), (S7, 1));
        assert!((res[0][0].score - 1.0).abs() < 1e-6);
        assert_eq!(res[0][1].subject_id, S9);
        assert_eq!(decide(&res[0], 0.9), Decision::Match { subject_id: S7, score: res[0][0].score });
        assert_eq!(decide(&res[0][1..], 0.9), Decision::NoMatch);
        assert!(g.add(&[1], &[S7], &unit(4, 1, 1.0)).is_err());
    }

    #[test]
    fn removed_templates_and_subjects_are_not_found() {
        for mut g in [Gallery::exact(4), Gallery::int8(4).unwrap()] {
            let vs = [unit(4, 0, 1.0), unit(4, 2, 1.0), unit(4, 0, 0.8)].concat();
            g.add(&[1, 2, 3], &[S7, S7, S9], &vs).unwrap();
            assert_eq!(g.remove(&[1, 42]).unwrap(), 1);
            // subject 7 is still found through template 2, subject 9 now ranks first
            let res = g.search(&unit(4, 0, 1.0), 5).unwrap();
            assert_eq!(res[0][0].subject_id, S9);
            assert_eq!((g.len(), g.subjects()), (2, 2));
            assert_eq!(g.remove(&[2]).unwrap(), 1);
            assert_eq!(g.subjects(), 1);
            let res = g.search(&unit(4, 2, 1.0), 5).unwrap();
            assert!(res[0].iter().all(|c| c.subject_id != S7), "{res:?}");
            // a removed id can be added again
            g.add(&[1], &[S7], &unit(4, 1, 1.0)).unwrap();
            assert_eq!(g.search(&unit(4, 1, 1.0), 1).unwrap()[0][0].template_id, 1);
        }
    }

    #[test]
    fn f32_codec_round_trips_and_checks_length() {
        let v = vec![0.5, -1.25, 3.0];
        assert_eq!(decode_f32(&encode_f32(&v), 3).unwrap(), v);
        assert!(decode_f32(&[0; 5], 3).is_err());
    }
}
