//! Fingerprint datasets in the layout of `../shared/datasets/fingerprints`: a folder with
//! `manifest.csv` (`path,finger_id,impression[,…]`, paths relative to the folder), and
//! the FVC protocol over it.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// One sample of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Absolute (or dataset-relative joined) path of the image or template file.
    pub path: PathBuf,
    /// Finger identifier (same finger = same id).
    pub finger: String,
    /// Impression number within the finger.
    pub impression: u32,
    /// Resolution from a `ppi` column, if the manifest has one.
    pub ppi: Option<f32>,
}

/// Reads `DIR/manifest.csv`. Only the columns `path`, `finger_id`, `impression` (and an
/// optional `ppi`) are used; quoted fields with commas are handled.
pub fn read_manifest(dir: &Path) -> Result<Vec<Sample>> {
    let file = dir.join("manifest.csv");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| EngineError::BadInput(format!("cannot read {}: {e}", file.display())))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(lines.next().ok_or_else(|| EngineError::BadInput(format!("{} is empty", file.display())))?);
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(ip), Some(ifg), Some(iimp)) = (col("path"), col("finger_id"), col("impression")) else {
        return Err(EngineError::BadInput(format!(
            "{}: header must have path, finger_id, impression (got {header:?})",
            file.display()
        )));
    };
    let ippi = col("ppi");
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f = split_csv(line);
        let get = |i: usize| {
            f.get(i)
                .map(|s| s.trim().to_string())
                .ok_or_else(|| EngineError::BadInput(format!("{} line {}: missing column {i}", file.display(), n + 2)))
        };
        let impression = get(iimp)?
            .parse::<u32>()
            .map_err(|e| EngineError::BadInput(format!("{} line {}: impression: {e}", file.display(), n + 2)))?;
        let ppi = ippi.and_then(|i| f.get(i)).and_then(|s| s.trim().parse::<f32>().ok());
        out.push(Sample { path: dir.join(get(ip)?), finger: get(ifg)?, impression, ppi });
    }
    if out.is_empty() {
        return Err(EngineError::BadInput(format!("{} lists no samples", file.display())));
    }
    Ok(out)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

/// Pairs of sample indices.
pub type Pairs = Vec<(usize, usize)>;

/// FVC protocol pairs over sample indices: genuine = every pair of impressions of the same
/// finger; impostor = the first impression of every pair of different fingers.
pub fn fvc_pairs(samples: &[Sample]) -> (Pairs, Pairs) {
    let mut fingers: Vec<&str> = samples.iter().map(|s| s.finger.as_str()).collect();
    fingers.sort_unstable();
    fingers.dedup();
    let mut genuine = Vec::new();
    let mut firsts = Vec::new();
    for f in &fingers {
        let mut idx: Vec<usize> = (0..samples.len()).filter(|&i| samples[i].finger == *f).collect();
        idx.sort_by_key(|&i| samples[i].impression);
        for a in 0..idx.len() {
            for b in a + 1..idx.len() {
                genuine.push((idx[a], idx[b]));
            }
        }
        firsts.push(idx[0]);
    }
    let mut impostor = Vec::new();
    for a in 0..firsts.len() {
        for b in a + 1..firsts.len() {
            impostor.push((firsts[a], firsts[b]));
        }
    }
    (genuine, impostor)
}

/// Sensor resolution for images whose file does not state a plausible one, from the
/// image geometry of the FVC databases (the FVC2002/2004 papers give the sensors):
/// 296x560 is FVC2002 DB2 (569 ppi), 300x480 FVC2004 DB3 (512 ppi); the rest are 500.
pub fn fvc_ppi_by_geometry(width: u32, height: u32) -> f32 {
    match (width, height) {
        (296, 560) => 569.0,
        (300, 480) => 512.0,
        _ => 500.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fvc_protocol_counts_for_a_b_set() {
        let samples: Vec<Sample> = (101..=110)
            .flat_map(|f| {
                (1..=8).map(move |i| Sample { path: PathBuf::new(), finger: f.to_string(), impression: i, ppi: None })
            })
            .collect();
        let (g, i) = fvc_pairs(&samples);
        assert_eq!((g.len(), i.len()), (280, 45));
        assert!(i.iter().all(|&(a, b)| samples[a].impression == 1 && samples[b].impression == 1));
    }

    #[test]
    fn csv_quotes_are_respected() {
        assert_eq!(split_csv(r#"a.tif,1,2,"x, y",z"#), vec!["a.tif", "1", "2", "x, y", "z"]);
    }
}
