//! Profiling aid: loads a dataset's cached templates and runs all-pairs MCC for N seconds.
//! Usage: `finger_match_loop DIR CACHE_DIR [SECONDS]`.

use epatrol_engine::finger::eval::{self, EvalConfig};
use epatrol_engine::finger::mcc::{self, MccTemplate};

/// CPU time of the calling thread, seconds (Linux `/proc/thread-self/schedstat`), so the
/// per-core rate is right even when other jobs share the cores; wall time elsewhere.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let cfg = EvalConfig { cache_dir: Some(a[2].clone().into()), sessions: 2, ..Default::default() };
    let secs: f64 = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let l = eval::load(std::path::Path::new(&a[1]), &cfg)?;
    let t: Vec<MccTemplate> = l.templates.iter().map(MccTemplate::new).collect();
    let t0 = std::time::Instant::now();
    let c0 = thread_cpu_s();
    let (mut n, mut digest) = (0u64, None);
    while t0.elapsed().as_secs_f64() < secs {
        // FNV-1a over the score bits of one pass: a speed change that alters any score shows
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for i in 0..t.len() {
            for j in i + 1..t.len() {
                h = (h ^ u64::from(mcc::similarity(&t[i], &t[j]).to_bits())).wrapping_mul(0x100_0000_01b3);
                n += 1;
            }
        }
        digest = Some(h);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_s().zip(c0).map_or(wall, |(c, c0)| c - c0);
    let digest = digest.map_or("-".into(), |h| format!("{h:016x}"));
    println!("{:.0} comparisons/s wall, {:.0} per CPU-second (score digest {digest})", n as f64 / wall, n as f64 / cpu);
    Ok(())
}
