//! `epatrol eval faces`: the protocol of `../shared/tools/face_reference.py`, so our
//! numbers sit next to the Python reference: all pairs within the dataset (genuine =
//! same identity), EER, FNMR at FMR 1e-2 / 1e-3, closed-set rank-1 with the first image
//! of each identity (manifest order) as gallery and the rest as probes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use epatrol_engine::SubjectId;
use epatrol_engine::face::{self, FacePipeline, StageTimes};
use epatrol_engine::identify::Gallery;
use epatrol_engine::metrics::{self, Timing};

use super::common::read_face_manifest;

/// How faces are located.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// YuNet + 5-point alignment (the headline mode).
    Detect,
    /// The probe path's coarse-to-fine detection (fast; measures its accuracy cost).
    Probe,
    /// Whole image letterboxed to 112×112, no detector (for pre-cropped sets like ORL).
    Nodetect,
}

/// Arguments of `epatrol eval faces`.
#[derive(Debug, clap::Args)]
pub struct EvalFacesArgs {
    /// Dataset dir with images and a manifest.csv (`path,identity,...`).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Face recognizer (manifest name; default: the first face_embedder).
    #[arg(long)]
    pub model: Option<String>,
    /// Face location mode.
    #[arg(long, value_enum, default_value_t = Mode::Detect)]
    pub mode: Mode,
    /// Parallel inference sessions (1 = per-image timings comparable with the reference).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write the full result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The JSON written by `--json`.
#[derive(Debug, Serialize)]
pub struct FaceEval {
    /// Dataset dir.
    pub dataset: String,
    /// Recognizer.
    pub model: String,
    /// Face location mode.
    pub mode: Mode,
    /// Images evaluated.
    pub images: usize,
    /// Distinct identities.
    pub identities: usize,
    /// Images where no face was detected (letterbox fallback used).
    pub detect_fail: usize,
    /// Same-identity pairs.
    pub genuine_pairs: usize,
    /// Different-identity pairs.
    pub impostor_pairs: usize,
    /// Equal error rate (fraction).
    pub eer: Option<f64>,
    /// FNMR keyed by target FMR ("0.01", "0.001"); null when too few impostor pairs.
    pub fnmr_at_fmr: std::collections::BTreeMap<String, Option<f64>>,
    /// Score threshold at each target FMR.
    pub threshold_at_fmr: std::collections::BTreeMap<String, Option<f32>>,
    /// Closed-set rank-1 identification rate over the probes.
    pub rank1: Option<f64>,
    /// Gallery size (one image per identity) and probe count for rank-1.
    pub gallery: usize,
    /// Probes for rank-1.
    pub probes: usize,
    /// Per-stage timings, ms.
    pub timings: std::collections::BTreeMap<String, Timing>,
    /// Inference sessions used.
    pub threads: usize,
}

/// Runs the evaluation and prints a markdown row; writes JSON when asked.
pub fn run(a: EvalFacesArgs) -> anyhow::Result<ExitCode> {
    let rows = read_face_manifest(&a.dataset)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads.max(1)).build()?;
    let pipe = FacePipeline::open(a.model.as_deref(), a.threads.max(1))?;
    // warm-up so the first image's timing is not session start-up
    let warm = face::Bgr::zeros(640, 480);
    pipe.reference_template(&warm, false)?;

    let bar = ProgressBar::new(rows.len() as u64)
        .with_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {elapsed}").expect("static template"))
        .with_message("embedding");
    let results: Vec<(Vec<f32>, bool, StageTimes)> = pool.install(|| {
        rows.par_iter()
            .map(|(path, _)| {
                let t = Instant::now();
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                let img = face::image::decode(&bytes).with_context(|| path.display().to_string())?;
                let decode_ms = t.elapsed().as_secs_f64() * 1e3;
                let out = match a.mode {
                    Mode::Detect => pipe.reference_template(&img, false)?,
                    Mode::Probe => pipe.reference_template(&img, true)?,
                    Mode::Nodetect => {
                        let t = Instant::now();
                        let crop = face::align::letterbox(&img);
                        let align_ms = t.elapsed().as_secs_f64() * 1e3;
                        let t = Instant::now();
                        let embedding = pipe.embedder().embed(&crop)?;
                        let times =
                            StageTimes { align_ms, embed_ms: t.elapsed().as_secs_f64() * 1e3, ..Default::default() };
                        face::FaceTemplate { embedding, detection: None, faces_found: 0, quality: None, times }
                    }
                };
                bar.inc(1);
                let detected = out.detection.is_some();
                Ok((out.embedding, detected, StageTimes { decode_ms, ..out.times }))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();

    let ids: Vec<&str> = rows.iter().map(|(_, id)| id.as_str()).collect();
    let embs: Vec<&[f32]> = results.iter().map(|r| r.0.as_slice()).collect();
    let dot = |x: &[f32], y: &[f32]| epatrol_engine::vector::dot(x, y);
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for i in 0..embs.len() {
        for j in i + 1..embs.len() {
            let s = dot(embs[i], embs[j]);
            if ids[i] == ids[j] { genuine.push(s) } else { impostor.push(s) }
        }
    }

    // closed-set rank-1 through the real 1:N gallery
    let dim = pipe.embedder().dim();
    let mut gallery = Gallery::exact(dim);
    let mut first: std::collections::HashMap<&str, SubjectId> = std::collections::HashMap::new();
    let mut probes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if first.contains_key(id) {
            probes.push(i);
        } else {
            let sid = SubjectId(first.len() as i64);
            first.insert(id, sid);
            gallery.add(&[i as u64], &[sid], embs[i])?;
        }
    }
    let queries: Vec<f32> = probes.iter().flat_map(|&p| embs[p].iter().copied()).collect();
    let hits = if probes.is_empty() { Vec::new() } else { gallery.search(&queries, 1)? };
    let correct =
        probes.iter().zip(&hits).filter(|(p, h)| h.first().map(|c| c.subject_id) == Some(first[ids[**p]])).count();

    let mut fnmr = std::collections::BTreeMap::new();
    let mut thr = std::collections::BTreeMap::new();
    for (key, target) in [("0.01", 1e-2), ("0.001", 1e-3)] {
        let r = metrics::fnmr_at_fmr(&genuine, &impostor, target);
        fnmr.insert(key.to_string(), r.map(|x| x.0));
        thr.insert(key.to_string(), r.map(|x| x.1));
    }
    let stage = |f: fn(&StageTimes) -> f64| results.iter().map(|r| f(&r.2)).collect::<Vec<_>>();
    let mut timings = std::collections::BTreeMap::new();
    for (name, v) in [
        ("decode", stage(|t| t.decode_ms)),
        ("detect", stage(|t| t.detect_ms)),
        ("align", stage(|t| t.align_ms)),
        ("embed", stage(|t| t.embed_ms)),
        ("detect_align_embed", stage(|t| t.detect_ms + t.align_ms + t.embed_ms)),
    ] {
        if let Some(t) = Timing::of_ms(&v) {
            timings.insert(name.to_string(), t);
        }
    }
    let eval = FaceEval {
        dataset: a.dataset.display().to_string(),
        model: pipe.embedder().name().to_string(),
        mode: a.mode,
        images: rows.len(),
        identities: first.len(),
        detect_fail: match a.mode {
            Mode::Detect | Mode::Probe => results.iter().filter(|r| !r.1).count(),
            Mode::Nodetect => 0,
        },
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        eer: metrics::eer(&genuine, &impostor),
        fnmr_at_fmr: fnmr,
        threshold_at_fmr: thr,
        rank1: (!probes.is_empty()).then(|| correct as f64 / probes.len() as f64),
        gallery: first.len(),
        probes: probes.len(),
        timings,
        threads: a.threads.max(1),
    };
    print_markdown(&eval);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&eval)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.2}%", 100.0 * v)).unwrap_or_else(|| "n/a".into())
}

fn print_markdown(e: &FaceEval) {
    let name =
        std::path::Path::new(&e.dataset).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!(
        "| dataset | mode | model | imgs | ids | genuine | impostor | det. fail | EER | FNMR@FMR=1e-2 | FNMR@FMR=1e-3 | rank-1 (probes) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) |",
        format!("{:?}", e.mode).to_lowercase(),
        e.model,
        e.images,
        e.identities,
        e.genuine_pairs,
        e.impostor_pairs,
        e.detect_fail,
        pct(e.eer),
        pct(e.fnmr_at_fmr["0.01"]),
        pct(e.fnmr_at_fmr["0.001"]),
        pct(e.rank1),
        e.probes
    );
    let t = |k: &str| e.timings.get(k).map(|t| format!("{:.2}", t.median_ms)).unwrap_or_else(|| "-".into());
    println!(
        "median ms: decode {} | detect {} | align {} | embed {} | detect+align+embed {}",
        t("decode"),
        t("detect"),
        t("align"),
        t("embed"),
        t("detect_align_embed")
    );
}
