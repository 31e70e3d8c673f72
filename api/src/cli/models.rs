//! `epatrol models`: what the manifest pins and whether the files are in place.

use std::process::ExitCode;

use epatrol_engine::models::Manifest;
use epatrol_engine::onnx;

/// Arguments of `epatrol models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists every manifest entry with its status; exit 1 if any file is missing or corrupt.
pub fn run(a: ModelsArgs) -> anyhow::Result<ExitCode> {
    let m = Manifest::embedded();
    let mut ok = true;
    let mut rows = Vec::new();
    for e in std::iter::once(&m.runtime).chain(&m.models) {
        let derived = e.source.as_ref().map(|s| format!("derived from {} by {}", s.file, e.derive));
        let status = match e.verified_path() {
            Ok(p) => match &derived {
                Some(d) => format!("ok {} ({d})", p.display()),
                None => format!("ok {}", p.display()),
            },
            Err(err) => {
                ok = false;
                err.to_string()
            }
        };
        rows.push(serde_json::json!({"name": e.name, "kind": e.kind, "file": e.file, "package": e.package,
                "source": e.source.as_ref().map(|s| &s.file), "status": status}));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let width = rows.iter().map(|r| r["name"].as_str().map_or(0, str::len)).max().unwrap_or(0);
        for r in &rows {
            println!(
                "{:<width$} {:<16} {}",
                r["name"].as_str().unwrap_or(""),
                r["kind"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or("")
            );
        }
        println!("search dirs: {:?}", onnx::search_dirs());
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
