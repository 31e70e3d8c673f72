//! Small helpers shared by the commands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use epatrol_api::service::{FingerProbe, Probe};

/// Reads an image file into a [`Probe`] labelled with its file name.
pub fn read_probe(path: &Path) -> anyhow::Result<Probe> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let label =
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    Ok(Probe { label, bytes })
}

/// Parses `[POS=]PATH` (POS = ISO finger position 0..10: 1 right thumb … 10 left
/// little, 0 unknown) and reads the fingerprint image.
pub fn read_finger(spec: &str) -> anyhow::Result<FingerProbe> {
    let (position, path) = match spec.split_once('=') {
        Some((pos, path)) if pos.chars().all(|c| c.is_ascii_digit()) && !pos.is_empty() => {
            let p: u8 = pos.parse().with_context(|| format!("finger position `{pos}`"))?;
            anyhow::ensure!(p <= 10, "finger position must be 0..10 (1 right thumb … 10 left little), got {p}");
            (p, path)
        }
        _ => (0, spec),
    };
    let Probe { label, bytes } = read_probe(Path::new(path))?;
    Ok(FingerProbe { label, bytes, position })
}

/// The actor recorded in the audit log for CLI use: `cli:<officer or OS user>`.
pub fn cli_actor(officer: Option<&str>) -> String {
    let who = officer.map(str::to_string).or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    format!("cli:{who}")
}

/// `../shared/datasets` next to the current directory or the source tree.
pub fn default_datasets_dir() -> PathBuf {
    let candidates = [
        PathBuf::from("../shared/datasets"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets")),
    ];
    candidates.iter().find(|p| p.is_dir()).cloned().unwrap_or_else(|| candidates[0].clone())
}

/// Rows of a dataset `manifest.csv` as (absolute path, identity).
pub fn read_face_manifest(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let path = dir.join("manifest.csv");
    let mut rdr = csv::Reader::from_path(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| format!("{} has no `{name}` column", path.display()))
    };
    let (pi, ii) = (col("path")?, col("identity")?);
    let mut rows = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), n + 2))?;
        rows.push((dir.join(&rec[pi]), rec[ii].to_string()));
    }
    anyhow::ensure!(!rows.is_empty(), "{} lists no images", path.display());
    Ok(rows)
}
