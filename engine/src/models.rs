//! The model manifest (`models/manifest.toml`), embedded at build time so the binary and
//! `models/fetch.py` agree on files, checksums, preprocessing and calibration.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::onnx;

/// The manifest text compiled into the binary.
pub const MANIFEST_TOML: &str = include_str!("../../models/manifest.toml");

/// Parsed manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The ONNX Runtime library entry.
    pub runtime: Entry,
    /// Every model.
    #[serde(rename = "model")]
    pub models: Vec<Entry>,
}

/// One file in the manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// Short name used on the command line (`--model NAME`).
    #[serde(default)]
    pub name: String,
    /// What the model does: `face_detector`, `face_embedder`, `finger_minutiae`.
    #[serde(default)]
    pub kind: String,
    /// File name in the cache dir.
    pub file: String,
    /// Pinned sha256 of the file.
    pub sha256: String,
    /// Registry package it comes from (`pypi:NAME==VER`, `npm:NAME@VER`), if any.
    #[serde(default)]
    pub package: String,
    /// Licence note.
    #[serde(default)]
    pub license: String,
    /// Input tensor description.
    pub input: Option<InputSpec>,
    /// Embedding dimension (embedders only).
    pub dim: Option<usize>,
    /// Decision threshold calibration (embedders only).
    pub calibration: Option<Calibration>,
    /// For a derived file: the file it is made from. `models/fetch.py` fetches and checks
    /// the source like any entry, then runs `derive` on it; only `file` is loaded.
    pub source: Option<Source>,
    /// Script (relative to the repository) that turns `source` into `file`.
    #[serde(default)]
    pub derive: String,
}

/// The file a derived entry is made from.
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    /// File name in the cache dir.
    pub file: String,
    /// Pinned sha256 of the source file.
    pub sha256: String,
}

/// How an image becomes the model's input tensor: `x = (pixel - mean) * scale`.
#[derive(Debug, Clone, Deserialize)]
pub struct InputSpec {
    /// Input tensor name.
    pub name: String,
    /// `NCHW` or `NHWC`.
    pub layout: String,
    /// `RGB`, `BGR` or `GRAY`.
    pub channels: String,
    /// Subtracted from each pixel value (0..255).
    pub mean: f32,
    /// Multiplied after the mean is removed.
    pub scale: f32,
}

/// A threshold on the similarity score for a target false-match rate.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Calibration {
    /// Target false-match rate.
    pub fmr: f64,
    /// Score threshold: scores at or above it are matches.
    pub threshold: f32,
    /// Impostor comparisons the threshold was measured on.
    pub impostor_pairs: u64,
    /// Where the numbers came from.
    pub derived_from: String,
}

impl Manifest {
    /// The embedded manifest.
    pub fn embedded() -> &'static Manifest {
        static M: std::sync::OnceLock<Manifest> = std::sync::OnceLock::new();
        M.get_or_init(|| toml::from_str(MANIFEST_TOML).expect("models/manifest.toml is valid (checked by tests)"))
    }

    /// Looks a model up by name.
    pub fn model(&self, name: &str) -> Result<&Entry> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let names: Vec<_> = self.models.iter().map(|m| m.name.as_str()).collect();
            EngineError::Invalid(format!("unknown model {name:?}; known: {}", names.join(", ")))
        })
    }

    /// The first model of a kind (the default for that job).
    pub fn default_of(&self, kind: &str) -> Result<&Entry> {
        self.models
            .iter()
            .find(|m| m.kind == kind)
            .ok_or_else(|| EngineError::Invalid(format!("no {kind} model in the manifest")))
    }
}

impl Entry {
    /// Finds the file in the cache dirs and checks its sha256; the path on success.
    pub fn verified_path(&self) -> Result<PathBuf> {
        let path = onnx::locate(&self.file).ok_or_else(|| EngineError::Model {
            name: self.name.clone(),
            path: PathBuf::from(&self.file),
            reason: "not found; run `python3 models/fetch.py`".into(),
            source: None,
        })?;
        verify_sha256(&path, &self.sha256).map_err(|(reason, source)| EngineError::Model {
            name: self.name.clone(),
            path: path.clone(),
            reason,
            source: source.map(Into::into),
        })?;
        Ok(path)
    }
}

/// Checks a file against a pinned sha256, once per path and process; on failure, what is
/// wrong and the read error if there was one.
fn verify_sha256(path: &std::path::Path, want: &str) -> std::result::Result<(), (String, Option<std::io::Error>)> {
    static CHECKED: std::sync::Mutex<Option<HashMap<PathBuf, String>>> = std::sync::Mutex::new(None);
    let mut guard = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    if cache.get(path).map(String::as_str) == Some(want) {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| (format!("cannot read: {e}"), Some(e)))?;
    let got = hex(&Sha256::digest(&bytes));
    if got != want {
        return Err((format!("sha256 {got} does not match the pinned {want}; re-run `python3 models/fetch.py`"), None));
    }
    cache.insert(path.to_path_buf(), want.to_string());
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_has_each_kind() {
        let m = Manifest::embedded();
        for kind in ["face_detector", "face_embedder", "finger_minutiae"] {
            assert!(m.default_of(kind).is_ok(), "{kind}");
        }
        assert!(m.model("nope").is_err());
        assert_eq!(m.model("fr_feature").unwrap().dim, Some(512));
        let leader = m.model("leader").unwrap();
        assert_eq!(leader.file, "LEADER-int8-trunk.onnx");
        assert_eq!(leader.source.as_ref().map(|s| s.file.as_str()), Some("LEADER.onnx"));
        assert_eq!(leader.derive, "models/leader_trunk.py models/leader_int8.json");
        assert_eq!(m.default_of("finger_minutiae").unwrap().name, "leader");
        let fp32 = m.model("leader-fp32").unwrap();
        assert_eq!(fp32.file, "LEADER-fused.onnx");
        assert_eq!(fp32.derive, "models/derive_leader.py");
    }
}
