//! `epatrol bench ...`: the gallery-index benchmark ([`index`]: build, measure, report,
//! over the `.npy` sets of [`npy`]) and the face, face-vector, gallery and load commands.

mod build;
mod index;
mod measure;
pub(super) mod npy;
mod report;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use clap::{Args, Subcommand};

pub use index::IndexArgs;

/// Top-k used for every search, as in faiss_anchor.py.
const K: usize = 10;

/// `epatrol bench ...`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to benchmark.
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// Benchmark targets.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Gallery index: build, latency, batch QPS, recall and identification metrics.
    Index(IndexArgs),
    /// Face pipeline: per-probe detect+align+embed latency (optionally beside the Python
    /// reference in the same run) and batched enrolment throughput.
    Face(super::bench_face::FaceArgs),
    /// Embed labelled face datasets with the server's face pipeline into the
    /// gen_vectors.py `.npy` layout (real embeddings for `bench index`).
    FaceVectors(super::face_vectors::FaceVectorsArgs),
    /// Add synthetic face distractors (random unit vectors) to the data dir's catalog.
    Gallery(super::bench_load::GalleryArgs),
    /// Fire identifications at a running server with thousands of connections at once.
    Load(super::bench_load::LoadArgs),
}

/// Runs `epatrol bench ...`.
pub fn run(data: std::path::PathBuf, a: BenchArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        BenchWhat::Index(a) => index::run_index(a).map(|_| ExitCode::SUCCESS),
        BenchWhat::Face(a) => super::bench_face::run(a).map(|_| ExitCode::SUCCESS),
        BenchWhat::FaceVectors(a) => super::face_vectors::run(a).map(|_| ExitCode::SUCCESS),
        BenchWhat::Gallery(g) => super::bench_load::run_gallery(data, g).map(|_| ExitCode::SUCCESS),
        BenchWhat::Load(l) => super::bench_load::run_load(l),
    }
}

fn log(msg: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[{t:7.1}s] {msg}");
}

fn pool(threads: usize) -> anyhow::Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(threads).build()?)
}
