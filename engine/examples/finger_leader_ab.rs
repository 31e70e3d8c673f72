//! Times LEADER model files against each other on FVC images, alternating the order per
//! image (the host's noise hits every model alike), and prints the median extraction time
//! and stem share per set. Usage: `finger_leader_ab THREADS IMAGES_PER_SET MODEL.onnx...`
//! (datasets from ../shared/datasets/fingerprints).

use std::path::PathBuf;

use epatrol_engine::finger::{image, leader::Leader};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: finger_leader_ab THREADS IMAGES_PER_SET MODEL.onnx...".into());
    }
    let (threads, per_set) = (args[1].parse::<usize>()?, args[2].parse::<usize>()?);
    let models = args[3..].iter().map(|p| Leader::open(p.as_ref(), 1, threads)).collect::<Result<Vec<_>, _>>()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/fingerprints");
    for (set, ppi) in [("fvc2002_db2_b", 569.0), ("fvc2004_db1_b", 500.0)] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(set))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        files.retain(|p| p.extension().is_some_and(|e| e == "tif"));
        files.sort();
        let step = (files.len() / per_set).max(1);
        let mut times = vec![Vec::new(); models.len()];
        let mut stem = vec![Vec::new(); models.len()];
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
            }
        }
        let base = median(&mut times[0].clone());
        for (i, p) in args[3..].iter().enumerate() {
            let m = median(&mut times[i]);
            println!(
                "{set} {p}: median {m:.1} ms (stem {:.1} ms), {:.2}x of the first",
                median(&mut stem[i]),
                m / base
            );
        }
    }
    Ok(())
}
