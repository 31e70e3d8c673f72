//! `epatrol bench index`: gallery-search benchmark over the `.npy` sets written by
//! `shared/bench/gen_vectors.py`, reporting the same JSON keys as
//! `shared/bench/faiss_anchor.py` so both tabulate side by side.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
#[cfg(feature = "faiss")]
use epatrol_engine::index::{FaissIndex, FaissKind};
use epatrol_engine::index::{FlatIndex, GalleryIndex, Hit, IvfIndex, QuantFlatIndex, QuantKind};
use epatrol_engine::vector::Isa;
use serde_json::{Value, json};

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

/// Options of `epatrol bench index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Directory with gallery.npy, probes.npy, probe_ids.npy (gen_vectors.py or
    /// `bench face-vectors` output). An optional gallery_ids.npy (`<i8`, one subject per
    /// gallery row) makes rank-1 / FNIR subject-level (several templates per person);
    /// without it row i is subject i.
    #[arg(long)]
    pub vectors: PathBuf,
    /// Comma-separated kinds: flat, int8, f16, ivf-int8, ivf-f16; with the `faiss` cargo
    /// feature also faiss-flat, faiss-sq8, faiss-hnsw, faiss-ivf, faiss-ivf-sq8.
    #[arg(long = "index", default_value = "flat,int8,f16,ivf-int8")]
    pub index: String,
    /// Write the JSON (faiss_anchor.py layout) here.
    #[arg(long)]
    pub json: PathBuf,
    /// Also write a markdown table here.
    #[arg(long)]
    pub md: Option<PathBuf>,
    /// Exact re-rank shortlist per query (default max(4k, 32)).
    #[arg(long)]
    pub rerank: Option<usize>,
    /// IVF lists (0 = round(4 * sqrt(N)), like faiss_anchor.py).
    #[arg(long, default_value_t = 0)]
    pub nlist: usize,
    /// IVF nprobe values to sweep.
    #[arg(long, default_value = "4,16,64,256,1024")]
    pub nprobe_list: String,
    /// faiss-hnsw: neighbours per node (M), as faiss_anchor.py.
    #[arg(long, default_value_t = 32)]
    pub hnsw_m: usize,
    /// faiss-hnsw: efConstruction.
    #[arg(long, default_value_t = 200)]
    pub hnsw_efc: usize,
    /// faiss-hnsw: efSearch values to sweep.
    #[arg(long, default_value = "16,32,64,128,256,512,1024,2048,4096")]
    pub ef_list: String,
    /// IVF and HNSW sweeps stop at the first point with recall@1 >= target.
    #[arg(long, default_value_t = 0.99)]
    pub target: f64,
    /// Probes timed one by one for latency (at most).
    #[arg(long, default_value_t = 1000)]
    pub lat_queries: usize,
    /// Seconds per configuration for the latency loop (at least 20 probes).
    #[arg(long, default_value_t = 15.0)]
    pub lat_budget: f64,
    /// Threads used to build (rayon).
    #[arg(long, default_value_t = 2)]
    pub build_threads: usize,
    /// FPIR at which FNIR is reported.
    #[arg(long, default_value_t = 0.01)]
    pub fpir: f64,
}

/// Runs `epatrol bench ...`.
pub fn run(data: std::path::PathBuf, a: BenchArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        BenchWhat::Index(a) => run_index(a).map(|_| ExitCode::SUCCESS),
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

/// The concrete index under test (IVF stays typed so the sweep can change nprobe).
enum Any {
    Flat(FlatIndex),
    Quant(QuantFlatIndex),
    Ivf(IvfIndex),
    #[cfg(feature = "faiss")]
    Faiss(FaissIndex),
}

impl Any {
    fn dyn_ref(&self) -> &dyn GalleryIndex {
        match self {
            Any::Flat(i) => i,
            Any::Quant(i) => i,
            Any::Ivf(i) => i,
            #[cfg(feature = "faiss")]
            Any::Faiss(i) => i,
        }
    }
    /// (resident bytes, bytes scanned per vector by one query over the whole gallery).
    fn bytes(&self, d: usize) -> (usize, usize) {
        match self {
            Any::Flat(i) => (i.len() * (4 * d + 8), 4 * d),
            Any::Quant(i) => (i.bytes(), i.scanned_bytes_per_vector()),
            Any::Ivf(i) => (i.bytes(), i.scanned_bytes_per_vector()),
            // Codes read per vector visited; HNSW and IVF visit only part of the gallery.
            #[cfg(feature = "faiss")]
            Any::Faiss(i) => (i.bytes(), i.code_bytes_per_vector()),
        }
    }
}

/// A built index and its build timings.
struct Built {
    index: Any,
    build: Value,
}

fn build(a: &IndexArgs, kind: &str, d: usize, nlist: usize, ids: &[u64], data: &[f32]) -> anyhow::Result<Built> {
    log(&format!("{kind}: build"));
    let t0 = Instant::now();
    let (index, train_s) = pool(a.build_threads)?.install(|| -> anyhow::Result<(Any, f64)> {
        Ok(match kind {
            "flat" => {
                let mut i = FlatIndex::try_new(d)?;
                i.add(ids, data)?;
                (Any::Flat(i), 0.0)
            }
            "int8" | "f16" => {
                let q = if kind == "int8" { QuantKind::Int8 } else { QuantKind::F16 };
                let mut i = QuantFlatIndex::new(q, d)?;
                if let Some(r) = a.rerank {
                    i.set_rerank(r);
                }
                i.add(ids, data)?;
                (Any::Quant(i), 0.0)
            }
            "ivf-int8" | "ivf-f16" => {
                let q = if kind == "ivf-int8" { QuantKind::Int8 } else { QuantKind::F16 };
                let mut i = IvfIndex::new(q, d, nlist)?;
                if let Some(r) = a.rerank {
                    i.set_rerank(r);
                }
                i.train(data)?;
                let train_s = t0.elapsed().as_secs_f64();
                i.add(ids, data)?;
                (Any::Ivf(i), train_s)
            }
            #[cfg(feature = "faiss")]
            k if k.starts_with("faiss-") => {
                let fk = faiss_kind(a, k, nlist)?;
                let mut i = FaissIndex::new(fk, d)?;
                let mut train_s = 0.0;
                if !i.is_trained() {
                    i.train(data)?;
                    train_s = t0.elapsed().as_secs_f64();
                }
                i.add(ids, data)?;
                (Any::Faiss(i), train_s)
            }
            #[cfg(not(feature = "faiss"))]
            k if k.starts_with("faiss-") => bail!(
                "index kind {k:?} needs faiss, which this binary was built without: rebuild with \
                 `cargo build --release -p epatrol-api --features faiss` (after `bash scripts/install-deps.sh --faiss`; \
                 see docs/index.md)"
            ),
            other => bail!(
                "unknown index kind {other:?} (flat, int8, f16, ivf-int8, ivf-f16; with --features faiss: \
                 faiss-flat, faiss-sq8, faiss-hnsw, faiss-ivf, faiss-ivf-sq8)"
            ),
        })
    })?;
    let build_s = t0.elapsed().as_secs_f64();
    log(&format!("{kind}: built in {build_s:.1}s"));
    Ok(Built {
        index,
        build: json!({"build_s": build_s, "train_s": train_s, "add_s": build_s - train_s, "build_threads": a.build_threads}),
    })
}

/// The faiss index a `faiss-*` kind names.
#[cfg(feature = "faiss")]
fn faiss_kind(a: &IndexArgs, kind: &str, nlist: usize) -> anyhow::Result<FaissKind> {
    Ok(match kind {
        "faiss-flat" => FaissKind::Flat,
        "faiss-sq8" => FaissKind::Sq8,
        "faiss-hnsw" => FaissKind::Hnsw { m: a.hnsw_m, ef_construction: a.hnsw_efc },
        "faiss-ivf" => FaissKind::Ivf { nlist, sq8: false },
        "faiss-ivf-sq8" => FaissKind::Ivf { nlist, sq8: true },
        other => {
            bail!("unknown faiss index kind {other:?} (faiss-flat, faiss-sq8, faiss-hnsw, faiss-ivf, faiss-ivf-sq8)")
        }
    })
}

/// Shared measurement context.
struct Ctx<'a> {
    a: &'a IndexArgs,
    probes: &'a [f32],
    d: usize,
    n: usize,
    gt: &'a [i64],
    mated: &'a [bool],
    truth: &'a [Vec<u64>],
    /// Subject of each gallery row (gallery_ids.npy); None = row i is subject i.
    subjects: Option<&'a [i64]>,
}

/// Process CPU seconds (utime + stime from /proc/self/stat, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// All probes in one search call on a pool of `threads`; best of up to 3 runs when a
/// run is under 5 s. Returns (seconds, hits, cpu/wall of the best run).
fn batch(idx: &dyn GalleryIndex, probes: &[f32], threads: usize) -> anyhow::Result<(f64, Vec<Vec<Hit>>, Value)> {
    let p = pool(threads)?;
    let mut best: Option<(f64, f64, usize)> = None;
    let mut hits = Vec::new();
    for rep in 0..3 {
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let h = p.install(|| idx.search(probes, K))?;
        let (dt, dc) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        if best.is_none_or(|b| dt < b.0) {
            best = Some((dt, dc, rep + 1));
        }
        hits = h;
        if dt >= 5.0 {
            break;
        }
    }
    let (dt, dc, runs) = best.expect("at least one run");
    Ok((dt, hits, json!({"runs": runs, "cpu_per_wall": dc / dt})))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // numpy's default (linear interpolation between closest ranks).
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Ctx<'_> {
    fn latency(&self, idx: &dyn GalleryIndex) -> anyhow::Result<Value> {
        let p = pool(1)?;
        p.install(|| -> anyhow::Result<Value> {
            idx.search(&self.probes[..self.d], K)?; // warm-up
            let mut lat = Vec::new();
            let start = Instant::now();
            for q in self.probes.chunks_exact(self.d).take(self.a.lat_queries) {
                let t0 = Instant::now();
                idx.search(q, K)?;
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
                if start.elapsed().as_secs_f64() > self.a.lat_budget && lat.len() >= 20 {
                    break;
                }
            }
            let mean = lat.iter().sum::<f64>() / lat.len() as f64;
            lat.sort_by(f64::total_cmp);
            Ok(json!({"lat_p50_ms": percentile(&lat, 50.0), "lat_p99_ms": percentile(&lat, 99.0),
                      "lat_mean_ms": mean, "lat_n": lat.len()}))
        })
    }

    fn measure(
        &self,
        name: &str,
        params: String,
        b: &Built,
        t1: Option<(f64, Vec<Vec<Hit>>, Value)>,
    ) -> anyhow::Result<Value> {
        let idx = b.index.dyn_ref();
        let (tq1, hits, st1) = match t1 {
            Some(x) => x,
            None => batch(idx, self.probes, 1)?,
        };
        let (tq2, _, st2) = batch(idx, self.probes, 2)?;
        let lat = self.latency(idx)?;
        let (bytes, scanned) = b.index.bytes(self.d);
        let scanned_frac = match &b.index {
            Any::Ivf(i) => i.scanned_fraction(self.probes)?,
            // faiss does not report how much of the gallery a graph walk or an IVF probe
            // read; null rather than a guess.
            #[cfg(feature = "faiss")]
            Any::Faiss(i) if !matches!(i.kind(), FaissKind::Flat | FaissKind::Sq8) => f64::NAN,
            _ => 1.0,
        };
        let nq = self.gt.len() as f64;
        let mut r = json!({
            "index": name, "params": params, "engine": "epatrol",
            "index_bytes": bytes, "bytes_per_vector": bytes as f64 / self.n as f64,
            "scanned_bytes_per_vector": scanned, "scanned_frac": scanned_frac,
            "qps_batch_1t": nq / tq1, "qps_batch_2t": nq / tq2, "batch_s_1t": tq1, "batch_s_2t": tq2,
            "batch_stats": {"1": st1, "2": st2}, "loadavg_1m": loadavg(),
        });
        let obj = r.as_object_mut().expect("object");
        for v in [&b.build, &lat, &self.recall(&hits), &self.ident(&hits)] {
            obj.extend(v.as_object().expect("object").clone());
        }
        obj.insert("meets_target".into(), json!(obj["recall@1"].as_f64().unwrap_or(0.0) >= self.a.target));
        log(&format!(
            "{name} {}: R@1={:.4} R@10={:.4} rank1={:.4} FNIR={:.4} p50={:.3}ms QPS1={:.0} QPS2={:.0} load={:.2}",
            obj["params"].as_str().unwrap_or(""),
            obj["recall@1"].as_f64().unwrap_or(0.0),
            obj["recall@10"].as_f64().unwrap_or(0.0),
            obj["rank1_mated"].as_f64().unwrap_or(0.0),
            obj["fnir_at_fpir"].as_f64().unwrap_or(0.0),
            obj["lat_p50_ms"].as_f64().unwrap_or(0.0),
            nq / tq1,
            nq / tq2,
            loadavg()
        ));
        Ok(r)
    }

    /// recall@1 / recall@10 against exact search, overall and split mated / non-mated.
    fn recall(&self, hits: &[Vec<Hit>]) -> Value {
        let mut r1 = Vec::new();
        let mut r10 = Vec::new();
        for (h, t) in hits.iter().zip(self.truth) {
            r1.push(h.first().map(|x| x.id) == t.first().copied());
            let inter = h.iter().take(K).filter(|x| t.iter().take(K).any(|y| *y == x.id)).count();
            r10.push(inter as f64 / K as f64);
        }
        let mean = |sel: &dyn Fn(usize) -> bool, v: &dyn Fn(usize) -> f64| {
            let idx: Vec<usize> = (0..hits.len()).filter(|&i| sel(i)).collect();
            if idx.is_empty() { Value::Null } else { json!(idx.iter().map(|&i| v(i)).sum::<f64>() / idx.len() as f64) }
        };
        let m = self.mated;
        let b1 = |i: usize| if r1[i] { 1.0 } else { 0.0 };
        let b10 = |i: usize| r10[i];
        json!({
            "recall@1": mean(&|_| true, &b1), "recall@10": mean(&|_| true, &b10),
            "recall@1_mated": mean(&|i| m[i], &b1), "recall@1_nonmated": mean(&|i| !m[i], &b1),
            "recall@10_mated": mean(&|i| m[i], &b10), "recall@10_nonmated": mean(&|i| !m[i], &b10),
        })
    }

    /// rank-1 on mated probes and FNIR at the threshold giving FPIR = `fpir` over the
    /// non-mated probes (same rule as faiss_anchor.py's `ident_stats`).
    fn ident(&self, hits: &[Vec<Hit>]) -> Value {
        let top1 = |h: &Vec<Hit>| h.first().map_or(f32::NEG_INFINITY, |x| x.score);
        let subject = |x: &Hit| self.subjects.map_or(x.id as i64, |s| s[x.id as usize]);
        let mut nm: Vec<f32> = hits.iter().zip(self.mated).filter(|(_, m)| !**m).map(|(h, _)| top1(h)).collect();
        nm.sort_by(|a, b| b.total_cmp(a));
        let allowed = (self.a.fpir * nm.len() as f64).floor() as usize;
        let thr = if allowed < nm.len() { nm[allowed].next_up() } else { f32::NEG_INFINITY };
        let fpir_real = if nm.is_empty() {
            Value::Null
        } else {
            json!(nm.iter().filter(|&&s| s >= thr).count() as f64 / nm.len() as f64)
        };
        let (mut n_m, mut rank1, mut miss) = (0usize, 0usize, 0usize);
        for ((h, &g), &m) in hits.iter().zip(self.gt).zip(self.mated) {
            if !m {
                continue;
            }
            n_m += 1;
            if h.first().is_some_and(|x| subject(x) == g) {
                rank1 += 1;
            }
            if !h.iter().any(|x| subject(x) == g && x.score >= thr) {
                miss += 1;
            }
        }
        json!({
            "rank1_mated": rank1 as f64 / n_m.max(1) as f64, "fnir_at_fpir": miss as f64 / n_m.max(1) as f64,
            "fpir_target": self.a.fpir, "fpir_real": fpir_real, "threshold": thr,
            "nonmated_top1_max": nm.first(), "n_mated": n_m, "n_nonmated": nm.len(),
        })
    }
}

fn env_info(isa: Isa) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags: Vec<String> = field("flags")
        .split_whitespace()
        .filter(|f| f.starts_with("avx") || *f == "fma" || *f == "f16c")
        .map(str::to_string)
        .collect();
    json!({
        "engine": "epatrol", "engine_version": env!("CARGO_PKG_VERSION"), "isa": isa.name(),
        "available_isas": Isa::available().iter().map(|i| i.name()).collect::<Vec<_>>(),
        "cpu_model": field("model name"), "cpu_simd_flags": flags.join(" "),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "loadavg_at_start": loadavg(),
    })
}

fn run_index(a: IndexArgs) -> anyhow::Result<()> {
    let gallery = npy::read_f32(&a.vectors.join("gallery.npy"))?;
    let probes = npy::read_f32(&a.vectors.join("probes.npy"))?;
    let gt = npy::read_i64(&a.vectors.join("probe_ids.npy"))?;
    anyhow::ensure!(gallery.shape.len() == 2 && probes.shape.len() == 2, "gallery and probes must be 2-D");
    let (n, d) = (gallery.shape[0], gallery.shape[1]);
    let nq = probes.shape[0];
    anyhow::ensure!(probes.shape[1] == d && gt.data.len() == nq, "probe shapes do not match the gallery");
    let subjects_path = a.vectors.join("gallery_ids.npy");
    let subjects = if subjects_path.exists() {
        let s = npy::read_i64(&subjects_path)?;
        anyhow::ensure!(s.data.len() == n, "gallery_ids.npy has {} rows, gallery {n}", s.data.len());
        Some(s.data)
    } else {
        None
    };
    let mated: Vec<bool> = gt.data.iter().map(|&g| g >= 0).collect();
    let n_mated = mated.iter().filter(|m| **m).count();
    let ids: Vec<u64> = (0..n as u64).collect();
    let kinds: Vec<String> = a.index.split(',').map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
    let nlist = if a.nlist > 0 { a.nlist } else { (4.0 * (n as f64).sqrt()).round() as usize };
    let isa = Isa::best();
    log(&format!("N={n} d={d} Q={nq} isa={} kinds={kinds:?}", isa.name()));

    let env = env_info(isa);
    let meta: Value = std::fs::read_to_string(a.vectors.join("meta.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let dataset = json!({
        "data_dir_name": a.vectors.file_name().map(|s| s.to_string_lossy().into_owned()),
        "N": n, "dim": d, "queries": nq, "mated": n_mated, "k": K, "generator_meta": meta,
        "subject_level": subjects.is_some(),
    });
    let settings = json!({
        "indexes": a.index, "build_threads": a.build_threads, "lat_queries": a.lat_queries,
        "lat_budget": a.lat_budget, "target": a.target, "fpir": a.fpir, "nlist": nlist,
        "nprobe_list": a.nprobe_list, "rerank": a.rerank,
        "hnsw_m": a.hnsw_m, "hnsw_efc": a.hnsw_efc, "ef_list": a.ef_list,
    });
    let mut results: Vec<Value> = Vec::new();
    let dump = |results: &Vec<Value>, complete: bool| -> anyhow::Result<()> {
        let out =
            json!({"env": env, "dataset": dataset, "complete": complete, "settings": settings, "results": results});
        std::fs::write(&a.json, serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", a.json.display()))
    };

    // Ground truth: exact flat search, which is also the Flat row.
    let flat = build(&a, "flat", d, nlist, &ids, &gallery.data)?;
    let first = batch(flat.index.dyn_ref(), &probes.data, 1)?;
    let truth: Vec<Vec<u64>> = first.1.iter().map(|h| h.iter().map(|x| x.id).collect()).collect();
    let ctx = Ctx {
        a: &a,
        probes: &probes.data,
        d,
        n,
        gt: &gt.data,
        mated: &mated,
        truth: &truth,
        subjects: subjects.as_deref(),
    };
    if kinds.iter().any(|k| k == "flat") {
        results.push(ctx.measure("epatrol-Flat", format!("exact f32 ({})", isa.name()), &flat, Some(first))?);
        dump(&results, false)?;
    }
    drop(flat);

    for kind in kinds.iter().filter(|k| *k != "flat") {
        let mut b = build(&a, kind, d, nlist, &ids, &gallery.data)?;
        let shortlist = a.rerank.unwrap_or((4 * K).max(32));
        match kind.as_str() {
            "int8" | "f16" => {
                let name = if kind == "int8" { "epatrol-SQ8+rerank" } else { "epatrol-SQfp16+rerank" };
                let params = format!("{kind} flat scan, exact f32 re-rank {shortlist} ({})", isa.name());
                results.push(ctx.measure(name, params, &b, None)?);
                dump(&results, false)?;
            }
            #[cfg(feature = "faiss")]
            k if k.starts_with("faiss-") => {
                let Any::Faiss(fi) = &b.index else { bail!("{k}: built a non-faiss index") };
                let fk = fi.kind();
                let list = |s: &str| s.split(',').filter_map(|x| x.trim().parse::<usize>().ok()).collect::<Vec<_>>();
                // (row name, sweep values); rows are named like faiss_anchor.py's with a
                // "faiss-rs-" prefix so the two faiss builds stay apart in one table.
                let (name, sweep) = match fk {
                    FaissKind::Flat => ("faiss-rs-Flat", vec![0]),
                    FaissKind::Sq8 => ("faiss-rs-SQ8", vec![0]),
                    FaissKind::Hnsw { .. } => ("faiss-rs-HNSWFlat", list(&a.ef_list)),
                    FaissKind::Ivf { nlist, sq8 } => (
                        if sq8 { "faiss-rs-IVFSQ8" } else { "faiss-rs-IVFFlat" },
                        list(&a.nprobe_list).into_iter().filter(|&p| p <= nlist).collect(),
                    ),
                };
                for v in sweep {
                    let params = match fk {
                        FaissKind::Flat => "IndexFlatIP (exact)".to_string(),
                        FaissKind::Sq8 => "IndexScalarQuantizer SQ8 IP".to_string(),
                        FaissKind::Hnsw { m, ef_construction } => {
                            if let Any::Faiss(i) = &mut b.index {
                                i.set_ef_search(v)?;
                            }
                            format!("M={m} efC={ef_construction} efSearch={v}")
                        }
                        FaissKind::Ivf { nlist, .. } => {
                            if let Any::Faiss(i) = &mut b.index {
                                i.set_nprobe(v)?;
                            }
                            format!("nlist={nlist} nprobe={v}")
                        }
                    };
                    let mut r = ctx.measure(name, params, &b, None)?;
                    r["engine"] = json!("faiss-rs 0.13 (static faiss-sys 0.7)");
                    let hit = r["recall@1"].as_f64().unwrap_or(0.0) >= a.target;
                    results.push(r);
                    dump(&results, false)?;
                    if hit {
                        break;
                    }
                }
            }
            _ => {
                let code = kind.trim_start_matches("ivf-");
                let name = format!("epatrol-IVF-{}+rerank", if code == "int8" { "SQ8" } else { "SQfp16" });
                let real_nlist = if let Any::Ivf(i) = &b.index { i.nlist() } else { nlist };
                for np in a.nprobe_list.split(',').filter_map(|s| s.trim().parse::<usize>().ok()) {
                    if np > real_nlist {
                        break;
                    }
                    if let Any::Ivf(i) = &mut b.index {
                        i.set_nprobe(np);
                    }
                    let params =
                        format!("nlist={real_nlist} nprobe={np} {code}, exact re-rank {shortlist} ({})", isa.name());
                    let r = ctx.measure(&name, params, &b, None)?;
                    let hit = r["recall@1"].as_f64().unwrap_or(0.0) >= a.target;
                    results.push(r);
                    dump(&results, false)?;
                    if hit {
                        break;
                    }
                }
            }
        }
    }
    dump(&results, true)?;
    let md = markdown(&results, n, d, nq, n_mated, isa);
    println!("{md}");
    if let Some(p) = &a.md {
        std::fs::write(p, md + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The faiss_anchor.py table, with the scanned bytes per vector added.
fn markdown(results: &[Value], n: usize, d: usize, nq: usize, mated: usize, isa: Isa) -> String {
    let mut s = format!(
        "N={n} d={d} Q={nq} ({mated} mated), k={K}, epatrol {} ({}), build threads 2, latency 1 thread\n\n\
         | index | params | build s | B/vec | scanned B/vec | scanned % | p50 ms | p99 ms | QPS 1t | QPS 2t | R@1 | R@10 | R@1 mated | rank-1 | FNIR@FPIR=.01 |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        env!("CARGO_PKG_VERSION"),
        isa.name()
    );
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    for r in results {
        s += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.3} | {:.3} | {:.0} | {:.0} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            r["index"].as_str().unwrap_or(""),
            r["params"].as_str().unwrap_or(""),
            f(r, "build_s"),
            f(r, "bytes_per_vector"),
            f(r, "scanned_bytes_per_vector"),
            100.0 * f(r, "scanned_frac"),
            f(r, "lat_p50_ms"),
            f(r, "lat_p99_ms"),
            f(r, "qps_batch_1t"),
            f(r, "qps_batch_2t"),
            f(r, "recall@1"),
            f(r, "recall@10"),
            f(r, "recall@1_mated"),
            f(r, "rank1_mated"),
            f(r, "fnir_at_fpir"),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny gen_vectors.py-style set: `n` random unit vectors, half the probes near a
    /// gallery row (mated), half random (non-mated).
    fn tiny_set(dir: &std::path::Path, n: usize, d: usize, nq: usize) {
        let gallery = epatrol_engine::vector::random_unit_vectors(n, d, 1);
        let noise = epatrol_engine::vector::random_unit_vectors(nq, d, 2);
        let mut probes = Vec::new();
        let mut gt = Vec::new();
        for i in 0..nq {
            if i % 2 == 0 {
                let g = (i * 7) % n;
                probes.extend(
                    gallery[g * d..(g + 1) * d].iter().zip(&noise[i * d..(i + 1) * d]).map(|(a, b)| a + 0.3 * b),
                );
                gt.push(g as i64);
            } else {
                probes.extend_from_slice(&noise[i * d..(i + 1) * d]);
                gt.push(-1);
            }
        }
        npy::write_f32(&dir.join("gallery.npy"), &[n, d], &gallery).unwrap();
        npy::write_f32(&dir.join("probes.npy"), &[nq, d], &probes).unwrap();
        npy::write_i64(&dir.join("probe_ids.npy"), &[nq], &gt).unwrap();
    }

    fn args(dir: &std::path::Path, index: &str) -> IndexArgs {
        IndexArgs {
            vectors: dir.to_path_buf(),
            index: index.into(),
            json: dir.join("out.json"),
            md: None,
            rerank: None,
            nlist: 0,
            nprobe_list: "4,16,64".into(),
            hnsw_m: 16,
            hnsw_efc: 64,
            ef_list: "16,64,256".into(),
            target: 0.99,
            lat_queries: 5,
            lat_budget: 0.1,
            build_threads: 1,
            fpir: 0.01,
        }
    }

    #[cfg(not(feature = "faiss"))]
    #[test]
    fn faiss_kinds_without_the_feature_say_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        tiny_set(dir.path(), 64, 8, 8);
        let e = run_index(args(dir.path(), "faiss-flat")).unwrap_err().to_string();
        assert!(e.contains("--features faiss"), "{e}");
    }

    #[cfg(feature = "faiss")]
    #[test]
    fn bench_index_runs_faiss_kinds_beside_ours() {
        let dir = tempfile::tempdir().unwrap();
        tiny_set(dir.path(), 2000, 32, 40);
        run_index(args(dir.path(), "flat,faiss-flat,faiss-hnsw,faiss-ivf")).unwrap();
        let out: Value = serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
        assert_eq!(out["complete"], true);
        let rows = out["results"].as_array().unwrap();
        let row = |name: &str| rows.iter().find(|r| r["index"] == name).unwrap_or_else(|| panic!("no {name} row"));
        for (name, min_r1) in [("epatrol-Flat", 1.0), ("faiss-rs-Flat", 1.0)] {
            let r = row(name);
            assert!(r["recall@1"].as_f64().unwrap() >= min_r1, "{name}: {r}");
            assert_eq!(r["rank1_mated"], 1.0, "{name}");
            for key in ["build_s", "bytes_per_vector", "lat_p50_ms", "qps_batch_1t", "qps_batch_2t", "fnir_at_fpir"] {
                assert!(r[key].is_number(), "{name} lacks {key}");
            }
        }
        assert!(row("faiss-rs-Flat")["engine"].as_str().unwrap().starts_with("faiss-rs"));
        // Sweeps stop at the target or run out of values; the last point of each is a row.
        assert!(rows.iter().any(|r| r["index"] == "faiss-rs-HNSWFlat"));
        assert!(rows.iter().any(|r| r["index"] == "faiss-rs-IVFFlat"));
        let best_mated = |name: &str| {
            rows.iter().filter(|r| r["index"] == name).filter_map(|r| r["rank1_mated"].as_f64()).fold(0.0, f64::max)
        };
        assert_eq!(best_mated("faiss-rs-HNSWFlat"), 1.0);
        assert_eq!(best_mated("faiss-rs-IVFFlat"), 1.0);
    }
}

/// Minimal `.npy` reader (format 1.0-3.0, little-endian `<f4` / `<i8`, C order), enough
/// for gen_vectors.py output without another dependency, and the matching writer
/// (format 1.0, as `numpy.save` writes it).
pub(super) mod npy {
    use std::path::Path;

    use anyhow::{Context, bail, ensure};

    /// A loaded array.
    pub struct Array<T> {
        /// Dimensions.
        pub shape: Vec<usize>,
        /// Elements in C order.
        pub data: Vec<T>,
    }

    /// Parses the header; returns (descr, shape, data offset).
    fn header(bytes: &[u8]) -> anyhow::Result<(String, Vec<usize>, usize)> {
        ensure!(bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY", "not a .npy file");
        let (len, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 => {
                ensure!(bytes.len() >= 12, "truncated .npy header");
                (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
            }
            v => bail!("unsupported .npy version {v}"),
        };
        ensure!(bytes.len() >= start + len, "truncated .npy header");
        let h = std::str::from_utf8(&bytes[start..start + len]).context("non-UTF-8 .npy header")?;
        let value = |key: &str| -> anyhow::Result<&str> {
            let i = h.find(&format!("'{key}'")).with_context(|| format!(".npy header lacks {key}"))?;
            Ok(h[i + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
        };
        ensure!(value("fortran_order")?.starts_with("False"), "Fortran-order .npy is not supported");
        let descr = value("descr")?;
        let descr = descr.trim_start_matches('\'').split('\'').next().unwrap_or("").to_string();
        let shape_s = value("shape")?;
        let shape_s = &shape_s[1..shape_s.find(')').context("bad .npy shape")?];
        let shape = shape_s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().context("bad .npy shape"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((descr, shape, start + len))
    }

    fn read<T, const W: usize>(path: &Path, want: &str, conv: fn([u8; W]) -> T) -> anyhow::Result<Array<T>> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (descr, shape, off) = header(&bytes).with_context(|| path.display().to_string())?;
        ensure!(descr == want, "{}: dtype {descr}, expected {want}", path.display());
        let count: usize = shape.iter().product();
        ensure!(
            bytes.len() - off == count * W,
            "{}: {} data bytes for shape {shape:?}",
            path.display(),
            bytes.len() - off
        );
        let data = bytes[off..].chunks_exact(W).map(|c| conv(c.try_into().expect("chunk of W bytes"))).collect();
        Ok(Array { shape, data })
    }

    /// Reads a `<f4` array.
    pub fn read_f32(path: &Path) -> anyhow::Result<Array<f32>> {
        read(path, "<f4", f32::from_le_bytes)
    }

    /// Reads a `<i8` array.
    pub fn read_i64(path: &Path) -> anyhow::Result<Array<i64>> {
        read(path, "<i8", i64::from_le_bytes)
    }

    fn write<const W: usize>(path: &Path, descr: &str, shape: &[usize], data: Vec<[u8; W]>) -> anyhow::Result<()> {
        ensure!(
            shape.iter().product::<usize>() == data.len(),
            "{}: shape {shape:?} != {} items",
            path.display(),
            data.len()
        );
        let dims = match shape {
            [one] => format!("({one},)"),
            _ => format!("({})", shape.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
        // numpy pads with spaces so the data starts on a 64-byte boundary, then '\n'.
        h.push_str(&" ".repeat(63 - (10 + h.len()) % 64));
        h.push('\n');
        let mut out = Vec::with_capacity(10 + h.len() + W * data.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&u16::try_from(h.len()).context("npy header too long")?.to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend(data.into_iter().flatten());
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes a `<f4` array of `shape` (C order).
    pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> anyhow::Result<()> {
        write(path, "<f4", shape, data.iter().map(|x| x.to_le_bytes()).collect())
    }

    /// Writes a `<i8` array of `shape` (C order).
    pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> anyhow::Result<()> {
        write(path, "<i8", shape, data.iter().map(|x| x.to_le_bytes()).collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
            let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
            while (10 + h.len() + 1) % 64 != 0 {
                h.push(' ');
            }
            h.push('\n');
            let mut out = b"\x93NUMPY\x01\x00".to_vec();
            out.extend_from_slice(&(h.len() as u16).to_le_bytes());
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out
        }

        #[test]
        fn reads_f4_and_i8_and_rejects_mismatches() {
            let dir = tempfile::tempdir().unwrap();
            let f: Vec<u8> = [1.5f32, -2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|x| x.to_le_bytes()).collect();
            let p = dir.path().join("a.npy");
            std::fs::write(&p, npy("<f4", "(2, 3)", &f)).unwrap();
            let a = read_f32(&p).unwrap();
            assert_eq!(a.shape, vec![2, 3]);
            assert_eq!(a.data[0], 1.5);
            assert_eq!(a.data[5], 6.0);
            assert!(read_i64(&p).is_err(), "dtype mismatch must fail");
            let i: Vec<u8> = [-1i64, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
            std::fs::write(&p, npy("<i8", "(2,)", &i)).unwrap();
            assert_eq!(read_i64(&p).unwrap().data, vec![-1, 7]);
            std::fs::write(&p, npy("<i8", "(3,)", &i)).unwrap();
            assert!(read_i64(&p).is_err(), "short data must fail");
            std::fs::write(&p, b"hello").unwrap();
            assert!(read_f32(&p).is_err());
        }

        #[test]
        fn writes_what_numpy_writes_and_reads_back() {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("w.npy");
            let f = [1.5f32, -2.0, 3.0, 4.0, 5.0, 6.0];
            write_f32(&p, &[2, 3], &f).unwrap();
            let bytes = std::fs::read(&p).unwrap();
            let fb: Vec<u8> = f.iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(bytes, npy("<f4", "(2, 3)", &fb), "byte-identical to numpy.save");
            assert_eq!(bytes.len() - fb.len(), 128, "data starts at byte 128");
            let a = read_f32(&p).unwrap();
            assert_eq!((a.shape, a.data), (vec![2, 3], f.to_vec()));
            write_i64(&p, &[3], &[-1, 0, 7]).unwrap();
            let ib: Vec<u8> = [-1i64, 0, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(std::fs::read(&p).unwrap(), npy("<i8", "(3,)", &ib));
            assert!(write_f32(&p, &[2, 2], &f).is_err(), "shape mismatch must fail");
        }
    }
}
