//! `epatrol bench face-vectors`: embeds labelled face datasets with our face pipeline
//! (YuNet detection, 5-point alignment, the 512-d recognizer) and writes the `.npy`
//! layout of `shared/bench/gen_vectors.py`, so `epatrol bench index` and
//! `shared/bench/faiss_anchor.py` run on real face embeddings.
//!
//! The embeddings are personal data derived from faces: the output directory must lie
//! outside any git work tree (checked), and `meta.json` holds counts only (it is copied
//! into `bench index` results); the per-row image list goes to `rows.csv` beside the
//! vectors.
//!
//! Split. Identities are numbered in order of first appearance over the datasets (given
//! order, then manifest order). Every `--nonmated-every`-th identity is held out: all
//! its images are non-mated probes (`probe_ids` = -1). For the enrolled identities:
//! * `first` (gen_vectors' layout exactly: row i of gallery.npy is subject i): the first
//!   image is the gallery template, every other image a mated probe.
//! * `multi` (several templates per person, as the server enrols them): the last image
//!   is the probe, all earlier ones are gallery rows; `gallery_ids.npy` gives each row's
//!   subject, which `bench index` uses for rank-1 / FNIR. People with one image are
//!   gallery-only distractors.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use epatrol_engine::EngineError;
use epatrol_engine::face::{self, FacePipeline};

use super::bench::npy;
use super::common::read_face_manifest;

/// How each image becomes a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplatePath {
    /// The server's enrolment / identification path (`FacePipeline::probe`): one face,
    /// quality checks; images it rejects are left out (counted in meta.json).
    Server,
    /// `eval faces --mode detect` (the Python reference's path): never rejects, falls back
    /// to the letterboxed image when no face is found.
    Detect,
}

/// Gallery / probe split of the enrolled identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// First image = the one gallery row of the subject (row i = subject i); the rest probe.
    First,
    /// Last image = probe; the earlier images are gallery rows (gallery_ids.npy).
    Multi,
}

/// Arguments of `epatrol bench face-vectors`.
#[derive(Debug, clap::Args)]
pub struct FaceVectorsArgs {
    /// Dataset dir with images and a manifest.csv (`path,identity,...`); repeatable.
    #[arg(long = "dataset", required = true)]
    pub datasets: Vec<PathBuf>,
    /// Output dir (created); must be outside any git work tree.
    #[arg(long, env = "EPATROL_FACE_VECTORS_DIR")]
    pub out: PathBuf,
    /// Gallery / probe split.
    #[arg(long, value_enum, default_value_t = Split::First)]
    pub split: Split,
    /// Hold out every N-th identity (1-based: N, 2N, ...) as non-mated (0 = none).
    #[arg(long, default_value_t = 5)]
    pub nonmated_every: usize,
    /// Which pipeline path makes the templates.
    #[arg(long, value_enum, default_value_t = TemplatePath::Server)]
    pub path: TemplatePath,
    /// Face recognizer (manifest name; default: the first face_embedder).
    #[arg(long)]
    pub model: Option<String>,
    /// Parallel inference sessions.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Counts written to meta.json (no names, no paths of images).
#[derive(Debug, Serialize)]
struct Meta {
    generator: &'static str,
    datasets: Vec<String>,
    model: String,
    path: TemplatePath,
    split: Split,
    nonmated_every: usize,
    images: usize,
    rejected: usize,
    rejected_reasons: std::collections::BTreeMap<String, usize>,
    identities: usize,
    enrolled_identities: usize,
    nonmated_identities: usize,
    n: usize,
    dim: usize,
    queries: usize,
    mated: usize,
    non_mated: usize,
    files: serde_json::Value,
}

/// Refuses an output dir inside a git work tree (the vectors are biometric data).
fn check_outside_git(out: &Path) -> anyhow::Result<()> {
    let abs = std::path::absolute(out).with_context(|| format!("resolving {}", out.display()))?;
    if let Some(repo) = abs.ancestors().find(|p| p.join(".git").exists()) {
        anyhow::bail!(
            "{} is inside the git work tree {}: face embeddings are personal data, write them elsewhere",
            abs.display(),
            repo.display()
        );
    }
    Ok(())
}

/// Runs the command: embeds, splits, writes the `.npy` files, meta.json and rows.csv.
pub fn run(a: FaceVectorsArgs) -> anyhow::Result<()> {
    check_outside_git(&a.out)?;
    let mut rows: Vec<(PathBuf, String)> = Vec::new();
    for ds in &a.datasets {
        let name = ds.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // identities are namespaced by dataset: "id01" of two sets are two people
        rows.extend(read_face_manifest(ds)?.into_iter().map(|(p, id)| (p, format!("{name}/{id}"))));
    }
    let threads = a.threads.max(1);
    let pipe = FacePipeline::open(a.model.as_deref(), threads)?;
    let dim = pipe.embedder().dim();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    // Ok(embedding) | Err(reason the server path rejected the image); I/O and model
    // errors abort.
    let embedded: Vec<Result<Vec<f32>, String>> = pool.install(|| {
        rows.par_iter()
            .map(|(path, _)| -> anyhow::Result<Result<Vec<f32>, String>> {
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                let t = match a.path {
                    TemplatePath::Server => match pipe.probe(&bytes) {
                        Ok(t) => t,
                        Err(EngineError::Rejected(reason)) => return Ok(Err(reason)),
                        Err(e) => return Err(e).with_context(|| path.display().to_string()),
                    },
                    TemplatePath::Detect => {
                        let img = face::image::decode(&bytes).with_context(|| path.display().to_string())?;
                        pipe.reference_template(&img, false)?
                    }
                };
                let mut v = t.embedding;
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                anyhow::ensure!(norm > 0.0 && v.len() == dim, "{}: degenerate embedding", path.display());
                v.iter_mut().for_each(|x| *x /= norm);
                Ok(Ok(v))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;

    // Identities in order of first appearance (rejected images do not count).
    let mut subject: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    for ((_, id), e) in rows.iter().zip(&embedded) {
        if e.is_ok() && !subject.contains_key(id.as_str()) {
            subject.insert(id, names.len());
            names.push(id);
        }
    }
    let held_out = |s: usize| a.nonmated_every > 0 && (s + 1).is_multiple_of(a.nonmated_every);
    // Enrolled subjects get dense gallery ids 0..; images per subject in order.
    let mut enrolled_id: HashMap<usize, i64> = HashMap::new();
    for s in (0..names.len()).filter(|&s| !held_out(s)) {
        enrolled_id.insert(s, enrolled_id.len() as i64);
    }
    let mut images_of: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (i, ((_, id), e)) in rows.iter().zip(&embedded).enumerate() {
        if e.is_ok() {
            images_of[subject[id.as_str()]].push(i);
        }
    }

    let vec_of = |i: usize| embedded[i].as_ref().expect("accepted image").as_slice();
    let (mut gallery, mut gallery_ids, mut probes, mut probe_ids) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut role: HashMap<usize, (&str, usize)> = HashMap::new();
    for s in (0..names.len()).filter(|&s| !held_out(s)) {
        let g = enrolled_id[&s];
        let imgs = &images_of[s];
        let gallery_imgs: Vec<usize> = match a.split {
            Split::First => vec![imgs[0]],
            Split::Multi if imgs.len() == 1 => imgs.clone(),
            Split::Multi => imgs[..imgs.len() - 1].to_vec(),
        };
        for &i in imgs {
            if gallery_imgs.contains(&i) {
                role.insert(i, ("gallery", gallery_ids.len()));
                gallery.extend_from_slice(vec_of(i));
                gallery_ids.push(g);
            } else {
                role.insert(i, ("probe", probe_ids.len()));
                probes.extend_from_slice(vec_of(i));
                probe_ids.push(g);
            }
        }
    }
    let mated = probe_ids.len();
    for s in (0..names.len()).filter(|&s| held_out(s)) {
        for &i in &images_of[s] {
            role.insert(i, ("probe", probe_ids.len()));
            probes.extend_from_slice(vec_of(i));
            probe_ids.push(-1);
        }
    }
    let (n, q) = (gallery_ids.len(), probe_ids.len());
    anyhow::ensure!(n > 0 && q > 0, "empty split: {n} gallery rows, {q} probes");

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    npy::write_f32(&a.out.join("gallery.npy"), &[n, dim], &gallery)?;
    npy::write_f32(&a.out.join("probes.npy"), &[q, dim], &probes)?;
    npy::write_i64(&a.out.join("probe_ids.npy"), &[q], &probe_ids)?;
    npy::write_f32(&a.out.join("probe_target_cos.npy"), &[q], &vec![f32::NAN; q])?;
    let mut files = json!({
        "gallery.npy": ["float32", [n, dim]], "probes.npy": ["float32", [q, dim]],
        "probe_ids.npy": ["int64", [q]], "probe_target_cos.npy": ["float32", [q]],
    });
    let gallery_ids_path = a.out.join("gallery_ids.npy");
    match a.split {
        Split::Multi => {
            npy::write_i64(&gallery_ids_path, &[n], &gallery_ids)?;
            files["gallery_ids.npy"] = json!(["int64", [n]]);
        }
        // a stale file from an earlier multi run would silently change the metrics
        Split::First if gallery_ids_path.exists() => std::fs::remove_file(&gallery_ids_path)?,
        Split::First => {}
    }

    let mut csv = std::io::BufWriter::new(std::fs::File::create(a.out.join("rows.csv"))?);
    writeln!(csv, "path,identity,role,row,rejected")?;
    for (i, ((path, id), e)) in rows.iter().zip(&embedded).enumerate() {
        let (r, row) = role.get(&i).map_or(("rejected", String::new()), |(r, k)| (*r, k.to_string()));
        let reason = e.as_ref().err().map(|s| s.replace([',', '\n'], ";")).unwrap_or_default();
        writeln!(csv, "{},{id},{r},{row},{reason}", path.display())?;
    }
    csv.flush()?;

    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for r in embedded.iter().filter_map(|e| e.as_ref().err()) {
        *reasons.entry(r.clone()).or_default() += 1;
    }
    let meta = Meta {
        generator: "epatrol bench face-vectors",
        datasets: a
            .datasets
            .iter()
            .map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
            .collect(),
        model: pipe.embedder().name().to_string(),
        path: a.path,
        split: a.split,
        nonmated_every: a.nonmated_every,
        images: rows.len(),
        rejected: reasons.values().sum(),
        rejected_reasons: reasons,
        identities: names.len(),
        enrolled_identities: enrolled_id.len(),
        nonmated_identities: names.len() - enrolled_id.len(),
        n,
        dim,
        queries: q,
        mated,
        non_mated: q - mated,
        files,
    };
    std::fs::write(a.out.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    eprintln!(
        "wrote {}: gallery {n}x{dim} ({} subjects), probes {q} ({mated} mated), {} images, {} rejected",
        a.out.display(),
        enrolled_id.len(),
        rows.len(),
        meta.rejected
    );
    Ok(())
}
