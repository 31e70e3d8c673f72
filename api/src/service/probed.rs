//! What the model phase of an identification hands to the record phase.

use epatrol_engine::EngineError;
use epatrol_engine::face::StageTimes;
use epatrol_engine::identify::{Candidate, Decision, decide};

use crate::error::Result;

/// One probe after extraction and search: ranked candidates (catalog subject ids, not yet
/// read), or why the image was unusable.
#[derive(Debug)]
pub enum Probed {
    /// A usable probe and the gallery's answer.
    Searched {
        /// Top candidates, best first.
        candidates: Vec<Candidate>,
        /// Probe quality measurements (face or finger), as reported.
        quality: Option<serde_json::Value>,
        /// Per-stage timings.
        times: StageTimes,
    },
    /// The image is readable but unusable (no face, several faces, poor print …).
    Rejected(String),
}

impl Probed {
    /// The answer for one extraction: an unusable image is [`Probed::Rejected`] (an
    /// answer: the person could not be identified), an unreadable file or a model failure
    /// an error; a template goes on to `search`.
    pub fn from_extraction<T>(
        extracted: std::result::Result<T, EngineError>,
        search: impl FnOnce(T) -> Result<Probed>,
    ) -> Result<Probed> {
        match extracted {
            Ok(t) => search(t),
            Err(EngineError::Rejected(reason)) => Ok(Probed::Rejected(reason)),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the best candidate reaches `threshold` at search time. The record phase
    /// decides again on the candidates still enrolled then; a person deleted meanwhile
    /// can only turn a match into a non-match, never the reverse.
    pub fn looks_like_match(&self, threshold: f32) -> bool {
        match self {
            Probed::Searched { candidates, .. } => matches!(decide(candidates, threshold), Decision::Match { .. }),
            Probed::Rejected(_) => false,
        }
    }
}
