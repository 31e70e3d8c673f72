//! `epatrol bench face`: per-probe latency of detect + align + embed on one 640×480
//! frame, the same protocol as `../shared/tools/face_reference.py --bench` (50 reps after
//! a warm-up, one ORT thread), optionally running that Python reference in the same run so
//! the ratio is measured on one machine at one moment; plus batched enrolment throughput
//! on 1 thread and on all cores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use epatrol_engine::face::{Bgr, FacePipeline, align, image};
use epatrol_engine::metrics::Timing;
use rayon::prelude::*;
use serde_json::json;

/// Options of `epatrol bench face`.
#[derive(Debug, Args)]
pub struct FaceArgs {
    /// Frame to time (resized to 640×480, as the reference does).
    #[arg(long, default_value = "../shared/datasets/faces/face_recognition_examples/obama.jpg")]
    pub image: PathBuf,
    /// Timed repetitions.
    #[arg(long, default_value_t = 50)]
    pub reps: usize,
    /// Also run the Python reference (`face_reference.py --bench`) on the same image in
    /// this run and report the ratio. Needs python3 with onnxruntime, opencv, numpy.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Dataset dir (manifest.csv) for the batched-enrolment throughput test.
    #[arg(long, default_value = "../shared/datasets/faces/deepface_tests")]
    pub batch: PathBuf,
    /// Recognition model (default: the manifest's first face embedder).
    #[arg(long)]
    pub model: Option<String>,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the benchmark and prints a markdown table.
pub fn run(a: FaceArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pipe = FacePipeline::open(a.model.as_deref(), cores)?;
    let bytes = std::fs::read(&a.image).with_context(|| format!("reading {}", a.image.display()))?;
    let frame = image::decode(&bytes)?.resize_linear(640, 480);
    let latency = time_stages(&pipe, &frame, a.reps)?;
    println!(
        "per-probe latency, 640x480 frame, {} reps, 1 ORT thread (probe_* = the identify path's coarse-to-fine detection; python column = the reference, full 640x480 detection):",
        a.reps
    );
    println!("| stage | rust median ms | rust p90 ms | python median ms | rust/python |\n|---|---|---|---|---|");
    let python = match &a.python {
        Some(script) => Some(python_reference(script, &a.image)?),
        None => None,
    };
    for (stage, t) in &latency {
        let py_stage = if *stage == "probe_total" { "total" } else { stage };
        let py = python.as_ref().and_then(|p| p.get(py_stage).copied());
        let ratio = py.map(|p| format!("{:.2}", t.median_ms / p)).unwrap_or_else(|| "-".into());
        let py = py.map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into());
        println!("| {stage} | {:.2} | {:.2} | {py} | {ratio} |", t.median_ms, t.p90_ms);
    }
    let batch = batch_throughput(&pipe, &a.batch, cores)?;
    println!("\nbatched enrolment ({} images of {}): {}", batch.0, a.batch.display(), batch_line(&batch.1));
    if let Some(path) = &a.json {
        let out = json!({
            "image": a.image, "reps": a.reps,
            "rust": latency.iter().map(|(k, t)| (k.to_string(), json!(t))).collect::<serde_json::Map<_, _>>(),
            "python_median_ms": python,
            "batch_images": batch.0,
            "batch_images_per_s": batch.1.iter().map(|(n, r)| (n.to_string(), json!(r))).collect::<serde_json::Map<_, _>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)?;
    }
    Ok(())
}

type StageTimings = Vec<(&'static str, Timing)>;

fn time_stages(pipe: &FacePipeline, frame: &Bgr, reps: usize) -> anyhow::Result<StageTimings> {
    let one = || -> anyhow::Result<[f64; 4]> {
        let t0 = Instant::now();
        let dets = pipe.detector().detect(frame)?;
        let t1 = Instant::now();
        let det = dets.first().context("no face in the benchmark frame")?;
        let face = align::align(frame, &det.landmarks);
        let t2 = Instant::now();
        pipe.embedder().embed(&face)?;
        let t3 = Instant::now();
        pipe.detector().detect_probe(frame)?;
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        Ok([ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, Instant::now())])
    };
    one()?; // warm-up: first runs allocate ORT arenas
    let runs = (0..reps.max(1)).map(|_| one()).collect::<anyhow::Result<Vec<_>>>()?;
    let col = |i: usize| runs.iter().map(|r| r[i]).collect::<Vec<_>>();
    let total = runs.iter().map(|r| r[0] + r[1] + r[2]).collect::<Vec<f64>>();
    let probe_total = runs.iter().map(|r| r[3] + r[1] + r[2]).collect::<Vec<f64>>();
    let stages = [
        ("detect_640x480", col(0)),
        ("align", col(1)),
        ("embed", col(2)),
        ("total", total),
        ("probe_detect_coarse", col(3)),
        ("probe_total", probe_total),
    ];
    Ok(stages.into_iter().filter_map(|(k, v)| Timing::of_ms(&v).map(|t| (k, t))).collect())
}

/// Runs `face_reference.py --bench IMAGE` and reads its markdown table's medians.
fn python_reference(script: &Path, image: &Path) -> anyhow::Result<std::collections::BTreeMap<&'static str, f64>> {
    let out = Command::new("python3")
        .arg(script)
        .arg("--bench")
        .arg(image)
        .output()
        .with_context(|| format!("running python3 {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut m = std::collections::BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(name), Some(med)) = (cells.get(1), cells.get(2).and_then(|v| v.parse::<f64>().ok())) else {
            continue;
        };
        let key = match *name {
            "detect_640x480" => "detect_640x480",
            "align" => "align",
            n if n.starts_with("embed_fr_feature") => "embed",
            n if n.starts_with("total") => "total",
            _ => continue,
        };
        m.insert(key, med);
    }
    if !m.contains_key("total") {
        bail!("could not read the reference's timing table:\n{text}");
    }
    Ok(m)
}

/// Images per second extracting every image of `dir` on 1 thread and on `cores` threads.
fn batch_throughput(pipe: &FacePipeline, dir: &Path, cores: usize) -> anyhow::Result<(usize, Vec<(usize, f64)>)> {
    let manifest = dir.join("manifest.csv");
    let mut rdr = csv::Reader::from_path(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let mut images = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        images.push(std::fs::read(dir.join(&rec[0]))?);
    }
    let mut rates = Vec::new();
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let t = Instant::now();
        let ok = pool.install(|| images.par_iter().filter(|b| pipe.probe(b).is_ok()).count());
        let secs = t.elapsed().as_secs_f64();
        if ok == 0 {
            bail!("no usable face in {}", dir.display());
        }
        rates.push((threads, images.len() as f64 / secs));
        if cores == 1 {
            break;
        }
    }
    Ok((images.len(), rates))
}

fn batch_line(rates: &[(usize, f64)]) -> String {
    let parts: Vec<String> = rates.iter().map(|(n, r)| format!("{r:.1} img/s on {n} thread(s)")).collect();
    let speedup = match rates {
        [(_, one), .., (_, many)] if rates.len() > 1 => format!(" (speed-up {:.2}x)", many / one),
        _ => String::new(),
    };
    format!("{}{speedup}", parts.join(", "))
}
