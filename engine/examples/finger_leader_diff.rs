//! Compares the minutiae two LEADER model files find on every FVC DB_B image: how many of
//! the first model's minutiae the second finds at the same pixel and within 4 px, and the
//! largest heat-map difference. Usage: `finger_leader_diff A.onnx B.onnx`
//! (datasets from ../shared/datasets/fingerprints).

use std::path::PathBuf;

use epatrol_engine::finger::{image, leader::Leader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err("usage: finger_leader_diff A.onnx B.onnx".into());
    }
    let (a, b) = (Leader::open(args[1].as_ref(), 1, 2)?, Leader::open(args[2].as_ref(), 1, 2)?);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/fingerprints");
    for (set, ppi) in [("fvc2002_db2_b", 569.0), ("fvc2004_db1_b", 500.0)] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(set))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        files.retain(|p| p.extension().is_some_and(|e| e == "tif"));
        files.sort();
        let (mut total, mut same, mut near, mut count_b, mut worst) = (0usize, 0usize, 0usize, 0usize, 0f32);
        for f in &files {
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
                near += (d <= 4.0) as usize;
            }
        }
        println!(
            "{set}: {total} minutiae (B: {count_b}); same pixel {same} ({:.2} %), within 4 px {near} ({:.2} %); max heat-map difference {worst:.2e}",
            100.0 * same as f64 / total as f64,
            100.0 * near as f64 / total as f64
        );
    }
    Ok(())
}
