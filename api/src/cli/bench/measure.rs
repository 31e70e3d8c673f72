//! Measuring a built index: batch throughput, one-by-one latency, recall against exact
//! search and identification rates (rank-1, FNIR at a target FPIR).

use std::time::Instant;

#[cfg(feature = "faiss")]
use epatrol_engine::index::FaissKind;
use epatrol_engine::index::{GalleryIndex, Hit};
use serde_json::{Value, json};

use super::build::{Any, Built};
use super::{IndexArgs, K, log, pool};

/// Shared measurement context.
pub(super) struct Ctx<'a> {
    pub(super) a: &'a IndexArgs,
    pub(super) probes: &'a [f32],
    pub(super) d: usize,
    pub(super) n: usize,
    pub(super) gt: &'a [i64],
    pub(super) mated: &'a [bool],
    pub(super) truth: &'a [Vec<u64>],
    /// Subject of each gallery row (gallery_ids.npy); None = row i is subject i.
    pub(super) subjects: Option<&'a [i64]>,
}

/// Process CPU seconds (utime + stime from /proc/self/stat, 100 Hz ticks).
pub(super) fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

pub(super) fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// All probes in one search call on a pool of `threads`; best of up to 3 runs when a
/// run is under 5 s. Returns (seconds, hits, cpu/wall of the best run).
pub(super) fn batch(
    idx: &dyn GalleryIndex,
    probes: &[f32],
    threads: usize,
) -> anyhow::Result<(f64, Vec<Vec<Hit>>, Value)> {
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

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
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

    pub(super) fn measure(
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
