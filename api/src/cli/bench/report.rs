//! What a run reports besides the measurements: the machine, and the markdown table.

use epatrol_engine::vector::Isa;
use serde_json::{Value, json};

use super::K;
use super::measure::loadavg;

pub(super) fn env_info(isa: Isa) -> Value {
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

/// The faiss_anchor.py table, with the scanned bytes per vector added.
pub(super) fn markdown(results: &[Value], n: usize, d: usize, nq: usize, mated: usize, isa: Isa) -> String {
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
