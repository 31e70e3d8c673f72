//! `epatrol bench index`: gallery-search benchmark over the `.npy` sets written by
//! `shared/bench/gen_vectors.py`, reporting the same JSON keys as
//! `shared/bench/faiss_anchor.py` so both tabulate side by side.

use std::path::PathBuf;

use anyhow::Context;
#[cfg(feature = "faiss")]
use anyhow::bail;
use clap::Args;
#[cfg(feature = "faiss")]
use epatrol_engine::index::FaissKind;
use epatrol_engine::vector::Isa;
use serde_json::{Value, json};

use super::build::{Any, build};
use super::measure::{Ctx, batch};
use super::report::{env_info, markdown};
use super::{K, log, npy};

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

pub(super) fn run_index(a: IndexArgs) -> anyhow::Result<()> {
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
