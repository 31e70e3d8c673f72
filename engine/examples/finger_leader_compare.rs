//! Compares LEADER model files on the FVC DB_B images of ../shared/datasets/fingerprints.
//!
//! - `finger_leader_compare time THREADS IMAGES_PER_SET A.onnx B.onnx...`: median extraction
//!   time per set (and the shares of the Rust stem and the patch-wise heads), the models alternating per image in
//!   rotating order so the host's noise hits them alike; ratios against the first model.
//! - `finger_leader_compare diff A.onnx B.onnx`: on every image, how many of A's minutiae B
//!   finds at the same pixel and within 4 px, and the largest heat-map difference.

use std::path::PathBuf;

use epatrol_engine::finger::{dataset, image, leader::Leader};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SETS: [(&str, f32); 2] = [("fvc2002_db2_b", 569.0), ("fvc2004_db1_b", 500.0)];

/// The images of one FVC set, in its manifest's order.
fn fvc_images(set: &str) -> Res<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/fingerprints").join(set);
    Ok(dataset::read_manifest(&dir)?.into_iter().map(|s| s.path).collect())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(threads: usize, per_set: usize, paths: &[String]) -> Res<()> {
    let models = paths.iter().map(|p| Leader::open(p.as_ref(), 1, threads)).collect::<Result<Vec<_>, _>>()?;
    for (set, ppi) in SETS {
        let files = fvc_images(set)?;
        let step = (files.len() / per_set).max(1);
        let mut times = vec![Vec::new(); models.len()];
        let (mut stem, mut heads) = (times.clone(), times.clone());
        for (k, f) in files.iter().skip(1).step_by(step).take(per_set).enumerate() {
            let img = image::decode(&std::fs::read(f)?)?;
            let mut order: Vec<usize> = (0..models.len()).collect();
            order.rotate_left(k % models.len());
            if k % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let t0 = std::time::Instant::now();
                let (_, timing) = models[i].extract_timed(&img, ppi)?;
                times[i].push(t0.elapsed().as_secs_f64() * 1e3);
                stem[i].push(timing.stem_ms);
                heads[i].push(timing.heads_ms);
            }
        }
        let base = median(&mut times[0].clone());
        for (i, p) in paths.iter().enumerate() {
            let m = median(&mut times[i]);
            println!(
                "{set} {p}: median {m:.1} ms (stem {:.1} ms, heads {:.1} ms), {:.2}x of the first",
                median(&mut stem[i]),
                median(&mut heads[i]),
                m / base
            );
        }
    }
    Ok(())
}

fn diff(a: &str, b: &str) -> Res<()> {
    let (a, b) = (Leader::open(a.as_ref(), 1, 2)?, Leader::open(b.as_ref(), 1, 2)?);
    for (set, ppi) in SETS {
        let (mut total, mut same, mut near, mut count_b, mut worst) = (0usize, 0usize, 0usize, 0usize, 0f32);
        let mut identical = 0usize;
        for f in fvc_images(set)? {
            let img = image::decode(&std::fs::read(f)?)?;
            let (ma, mb) = (a.maps(&img, ppi)?, b.maps(&img, ppi)?);
            for (p, q) in ma.data.chunks_exact(4).zip(mb.data.chunks_exact(4)) {
                worst = worst.max((p[0] - q[0]).abs());
            }
            let (ta, tb) = (a.extract(&img, ppi)?, b.extract(&img, ppi)?);
            total += ta.minutiae.len();
            count_b += tb.minutiae.len();
            for m in &ta.minutiae {
                let d = tb.minutiae.iter().map(|n| (m.x - n.x).hypot(m.y - n.y)).fold(f32::MAX, f32::min);
                same += (d == 0.0) as usize;
                identical += tb.minutiae.contains(m) as usize;
                near += (d <= 4.0) as usize;
            }
        }
        println!(
            "{set}: {total} minutiae (B: {count_b}); identical (position, angle, type, quality) {identical}; same pixel {same} ({:.2} %), within 4 px {near} ({:.2} %); max heat-map difference {worst:.2e}",
            100.0 * same as f64 / total as f64,
            100.0 * near as f64 / total as f64
        );
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("time") if args.len() >= 5 => time(args[2].parse()?, args[3].parse()?, &args[4..]),
        Some("diff") if args.len() == 4 => diff(&args[2], &args[3]),
        _ => {
            Err("usage: finger_leader_compare time THREADS IMAGES_PER_SET A.onnx B.onnx... | diff A.onnx B.onnx".into())
        }
    }
}
