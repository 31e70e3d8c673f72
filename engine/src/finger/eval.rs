//! FVC-protocol evaluation of the fingerprint pipeline over a dataset folder (see
//! [`crate::finger::dataset`]): extract (or load) every template, score all genuine and
//! first-impression impostor pairs, report EER, FMR100, FMR1000, ZeroFMR and timings.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::finger::dataset::{self, Sample};
use crate::finger::leader::{self, Leader, LeaderConfig};
use crate::finger::mcc::{self, MccTemplate};
use crate::finger::template::Template;
use crate::finger::{image, iso19794};
use crate::metrics::{self, ScoreStats, Timing};
use crate::models::Manifest;

/// Bumped whenever extraction output changes, so stale cached templates are not reused
/// (the cache file name also carries the first 12 hex digits of the model's sha256).
const CACHE_VERSION: &str = "leader-v1-t0.60-max150";

/// Evaluation settings.
#[derive(Debug, Clone, Default)]
pub struct EvalConfig {
    /// Resolution of every image (overrides the manifest, the file and the FVC geometry).
    pub ppi: Option<f32>,
    /// Folder for cached templates (keyed by the image's sha256); `None` = no cache.
    /// Holds templates of real people: keep it outside the repository.
    pub cache_dir: Option<PathBuf>,
    /// Parallel LEADER sessions (default 2).
    pub sessions: usize,
    /// Run LEADER on the ridge area plus this margin only (see `LeaderConfig::crop_margin`).
    pub crop_margin: Option<u32>,
    /// Manifest entry of the LEADER model (`None`: `leader`, the int8 default; `leader-fp32`
    /// is the float network).
    pub model: Option<String>,
}

impl EvalConfig {
    fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(leader::DEFAULT_MODEL)
    }
}

/// FVC metrics and timings of one run; rates are fractions (0.0125 = 1.25 %).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Dataset folder.
    pub dataset: String,
    /// Extractor + matcher label.
    pub engine: String,
    /// Samples (images or templates).
    pub samples: usize,
    /// Genuine comparisons.
    pub genuine_pairs: usize,
    /// Impostor comparisons.
    pub impostor_pairs: usize,
    /// Equal error rate.
    pub eer: f64,
    /// Lowest FNMR with FMR ≤ 1 %. With fewer than 100 impostor pairs this is the FNMR at
    /// FMR = 0 (the FVC convention: the only measurable FMR ≤ 1 % is 0), flagged below.
    pub fmr100: f64,
    /// Lowest FNMR with FMR ≤ 0.1 % (same convention).
    pub fmr1000: f64,
    /// FNMR when no impostor is accepted.
    pub zerofmr: f64,
    /// True when FMR100/FMR1000 fell back to ZeroFMR for lack of impostor pairs.
    pub fmr_resolution_limited: bool,
    /// Genuine score distribution.
    pub genuine: Option<ScoreStats>,
    /// Impostor score distribution.
    pub impostor: Option<ScoreStats>,
    /// Mean minutiae per template.
    pub minutiae_mean: f64,
    /// Extraction time per image actually run in this evaluation (cache misses only).
    pub extract_ms: Option<Timing>,
    /// Templates not extracted in this run (cache hits and template files).
    pub cached_templates: usize,
    /// Time per 1:1 comparison, cylinder building excluded (single thread).
    pub match_ms: Option<Timing>,
    /// Time to build the MCC cylinders of one template.
    pub prepare_ms: Option<Timing>,
    /// Impostor pairs for calibration: every pair of impressions of different fingers
    /// (many more than the FVC protocol's first-impression pairs).
    pub calibration_impostor_pairs: usize,
    /// Score threshold reaching each target FMR ("0.01", "0.001") over those pairs: what
    /// the decision threshold in models/manifest.toml is derived from.
    pub threshold_at_fmr: std::collections::BTreeMap<String, f32>,
}

/// Loads or extracts the template of one sample.
fn load_template<'a>(
    s: &Sample,
    cfg: &EvalConfig,
    leader: &(dyn Fn() -> Result<&'a Leader> + Sync),
) -> Result<(Template, Option<f64>)> {
    let bytes =
        std::fs::read(&s.path).map_err(|e| EngineError::BadInput(format!("cannot read {}: {e}", s.path.display())))?;
    if iso19794::looks_like_template(&bytes) {
        let rec = iso19794::decode(&bytes).map_err(|e| EngineError::BadInput(format!("{}: {e}", s.path.display())))?;
        let t = rec.views.into_iter().next().map(|v| v.template).ok_or_else(|| {
            EngineError::BadInput(format!("{}: template record has no finger view", s.path.display()))
        })?;
        return Ok((t, None));
    }
    let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let crop = cfg.crop_margin.map_or(String::new(), |m| format!("-crop{m}"));
    let model = &Manifest::embedded().model(cfg.model())?.sha256;
    let model = &model[..model.len().min(12)];
    let cache_file = cfg.cache_dir.as_ref().map(|d| d.join(format!("{digest}-{CACHE_VERSION}-{model}{crop}.json")));
    if let Some(cf) = &cache_file
        && let Ok(text) = std::fs::read_to_string(cf)
        && let Ok(t) = serde_json::from_str::<Template>(&text)
    {
        return Ok((t, None));
    }
    let img = image::decode(&bytes).map_err(|e| EngineError::BadInput(format!("{}: {e}", s.path.display())))?;
    let ppi = cfg.ppi.or(s.ppi).or(img.ppi).unwrap_or_else(|| dataset::fvc_ppi_by_geometry(img.width, img.height));
    let t0 = Instant::now();
    let t = leader()?.extract(&img, ppi)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(cf) = &cache_file {
        if let Some(d) = cf.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(cf, serde_json::to_vec(&t).map_err(|e| EngineError::Invalid(e.to_string()))?)?;
    }
    Ok((t, Some(ms)))
}

/// The templates of a dataset, in manifest order.
pub struct Loaded {
    /// The manifest rows.
    pub samples: Vec<Sample>,
    /// One template per sample.
    pub templates: Vec<Template>,
    /// Extraction times of the images that were not in the cache, ms.
    pub extract_ms: Vec<f64>,
}

/// Reads `dir/manifest.csv` and loads every sample: template files are decoded, images
/// are taken from the cache or run through LEADER (`cfg.sessions` in parallel).
pub fn load(dir: &Path, cfg: &EvalConfig) -> Result<Loaded> {
    let samples = dataset::read_manifest(dir)?;
    let sessions = if cfg.sessions == 0 { 2 } else { cfg.sessions };
    // The model is opened only when some sample is not in the cache.
    let cell: std::sync::OnceLock<Result<Leader>> = std::sync::OnceLock::new();
    let leader = || -> Result<&Leader> {
        cell.get_or_init(|| {
            Leader::open_model(cfg.model(), sessions, 1)
                .map(|l| l.with_config(LeaderConfig { crop_margin: cfg.crop_margin, ..Default::default() }))
        })
        .as_ref()
        .map_err(|e| EngineError::Invalid(format!("LEADER: {e}")))
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(sessions)
        .build()
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    let loaded: Vec<Result<(Template, Option<f64>)>> =
        pool.install(|| samples.par_iter().map(|s| load_template(s, cfg, &leader)).collect());
    let mut templates = Vec::with_capacity(samples.len());
    let mut extract_ms = Vec::new();
    for r in loaded {
        let (t, ms) = r?;
        templates.push(t);
        extract_ms.extend(ms);
    }
    Ok(Loaded { samples, templates, extract_ms })
}

/// Runs the FVC protocol over `dir` with LEADER + MCC.
pub fn run(dir: &Path, cfg: &EvalConfig) -> Result<EvalReport> {
    let Loaded { samples, templates, extract_ms } = load(dir, cfg)?;
    let mut prepare_ms = Vec::new();
    let prepared: Vec<MccTemplate> = templates
        .iter()
        .map(|t| {
            let t0 = Instant::now();
            let m = MccTemplate::new(t);
            prepare_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            m
        })
        .collect();
    let (genuine_pairs, impostor_pairs) = dataset::fvc_pairs(&samples);
    let mut match_ms = Vec::new();
    let mut score = |&(a, b): &(usize, usize)| {
        let t0 = Instant::now();
        let s = mcc::similarity(&prepared[a], &prepared[b]);
        match_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        s
    };
    let genu: Vec<f32> = genuine_pairs.iter().map(&mut score).collect();
    let imp: Vec<f32> = impostor_pairs.iter().map(&mut score).collect();
    let n = samples.len();
    let all_imp: Vec<f32> = (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .filter(|&(a, b)| samples[a].finger != samples[b].finger)
        .map(|(a, b)| mcc::similarity(&prepared[a], &prepared[b]))
        .collect();
    let threshold_at_fmr = if all_imp.is_empty() {
        Default::default()
    } else {
        ["0.01", "0.001"]
            .iter()
            .map(|k| (k.to_string(), metrics::impostor_threshold(&all_imp, k.parse().unwrap())))
            .collect()
    };
    let zerofmr = metrics::fnmr_at_zero_fmr(&genu, &imp).unwrap_or(1.0);
    let at = |target: f64| metrics::fnmr_at_fmr(&genu, &imp, target).map(|r| r.0);
    let (fmr100, fmr1000) = (at(0.01), at(0.001));
    Ok(EvalReport {
        dataset: dir.display().to_string(),
        engine: match cfg.crop_margin {
            None => format!("LEADER ({}) + MCC (bit, LSS-R)", cfg.model()),
            Some(m) => format!("LEADER ({}, ridge-area crop, margin {m}) + MCC (bit, LSS-R)", cfg.model()),
        },
        samples: samples.len(),
        genuine_pairs: genu.len(),
        impostor_pairs: imp.len(),
        eer: metrics::eer(&genu, &imp).unwrap_or(1.0),
        fmr100: fmr100.unwrap_or(zerofmr),
        fmr1000: fmr1000.unwrap_or(zerofmr),
        zerofmr,
        fmr_resolution_limited: fmr100.is_none() || fmr1000.is_none(),
        genuine: ScoreStats::of(&genu),
        impostor: ScoreStats::of(&imp),
        minutiae_mean: templates.iter().map(|t| t.minutiae.len() as f64).sum::<f64>() / templates.len().max(1) as f64,
        extract_ms: Timing::of_ms(&extract_ms),
        cached_templates: templates.len() - extract_ms.len(),
        match_ms: Timing::of_ms(&match_ms),
        prepare_ms: Timing::of_ms(&prepare_ms),
        calibration_impostor_pairs: all_imp.len(),
        threshold_at_fmr,
    })
}
