//! Prints the LEADER minutiae of one image as JSON lines (x, y, angle, kind, quality), to
//! compare with the Python reference. Usage: `finger_leader_dump IMAGE PPI`.

use epatrol_engine::finger::{image, leader::Leader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (path, ppi) = (&args[1], args[2].parse::<f32>()?);
    let img = image::decode(&std::fs::read(path)?)?;
    let leader = Leader::open_default(1)?;
    let t0 = std::time::Instant::now();
    let t = leader.extract(&img, ppi)?;
    eprintln!("{} minutiae in {:.0} ms", t.minutiae.len(), t0.elapsed().as_secs_f64() * 1e3);
    for m in &t.minutiae {
        let kind = if m.kind == epatrol_engine::finger::MinutiaKind::Ending { 0 } else { 1 };
        println!("{:.4} {:.4} {:.5} {} {:.5}", m.x, m.y, m.angle, kind, m.quality);
    }
    Ok(())
}
