//! FVC-protocol evaluation of LEADER + MCC on a dataset folder, for matcher development
//! before the `epatrol eval fingers` CLI is wired. Usage:
//! `finger_eval DIR [CACHE_DIR]` (cache: extracted templates, keep outside the repo).

use epatrol_engine::finger::eval::{self, EvalConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let cfg = EvalConfig { cache_dir: args.get(2).map(Into::into), sessions: 2, ..Default::default() };
    let r = eval::run(std::path::Path::new(&args[1]), &cfg)?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
