//! Court export: a directory with the footage, its metadata, the custody entries about it,
//! a signed manifest of every file, and instructions for checking it with or without
//! `epatrol` (`epatrol verify-export DIR`, or `sha256sum -c SHA256SUMS` plus any Ed25519
//! tool for `manifest.sig`).

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Digest, EvidenceVault, blob_key};
use crate::clock::fmt_ts;
use crate::custody::{CustodyEntry, keys};
use crate::error::{Result, StoreError};

/// Format tag of the manifest.
pub const EXPORT_FORMAT: &str = "epatrol-export-1";

/// One file of the package.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the package.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// BLAKE3 hex.
    pub blake3: String,
    /// SHA-256 hex (what most forensic tools check).
    pub sha256: String,
}

/// The signed manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// Digest of the footage (BLAKE3 hex).
    pub evidence_digest: String,
    /// When exported.
    pub exported_at: String,
    /// Who exported.
    pub exported_by: String,
    /// Signing key id.
    pub key_id: String,
    /// Public key (hex) that signs `manifest.json` and the custody entries.
    pub public_key: String,
    /// Every other file.
    pub files: Vec<ManifestFile>,
}

/// Where the package went.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// Package directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl EvidenceVault {
    /// Writes the export package for `digest` into `out` (created; must not exist yet).
    pub async fn export(&self, actor: &str, digest: &Digest, out: &Path) -> Result<ExportReport> {
        let e = self.active_evidence(digest).await?;
        std::fs::create_dir(out).map_err(|err| StoreError::Invalid(format!("export dir {}: {err}", out.display())))?;
        std::fs::create_dir_all(out.join("footage"))?;
        // custody first, so the extract contains the export itself
        self.custody.append(actor, "export", &e.digest, &serde_json::json!({"to": out.display().to_string()})).await?;

        let mut files = Vec::new();
        let ext =
            Path::new(&e.original_name).extension().and_then(|x| x.to_str()).unwrap_or("bin").to_ascii_lowercase();
        let footage = format!("footage/{}.{ext}", e.digest);
        files.push(self.copy_out(&blob_key(digest), out, &footage).await?);
        let thumbs = self.catalog.thumbnails_of(e.id).await?;
        if !thumbs.is_empty() {
            std::fs::create_dir_all(out.join("thumbnails"))?;
        }
        for t in &thumbs {
            files.push(
                self.copy_out(&ObjPath::from(t.object_key.clone()), out, &format!("thumbnails/{}.jpg", t.idx)).await?,
            );
        }
        let metadata = serde_json::json!({
            "evidence": e,
            "incidents": self.catalog.incidents_of(e.id).await?,
            "cases": self.catalog.cases_of(e.id).await?,
            "holds": self.catalog.holds_of(e.id).await?,
            "thumbnails": thumbs,
        });
        files.push(write_file(out, "metadata.json", serde_json::to_vec_pretty(&metadata).expect("json"))?);
        let mut custody = Vec::new();
        for entry in self.custody.entries_for(&e.digest).await? {
            serde_json::to_writer(&mut custody, &entry).expect("json");
            custody.push(b'\n');
        }
        files.push(write_file(out, "custody.jsonl", custody)?);

        let key = self.custody.key();
        let public_key = hex::encode(key.public().as_bytes());
        let manifest = Manifest {
            format: EXPORT_FORMAT.into(),
            evidence_digest: e.digest.clone(),
            exported_at: fmt_ts(self.clock.now()),
            exported_by: actor.into(),
            key_id: key.key_id().into(),
            public_key: public_key.clone(),
            files,
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("json");
        std::fs::write(out.join("manifest.json"), &manifest_bytes)?;
        std::fs::write(out.join("manifest.sig"), key.sign_hex(&manifest_bytes))?;
        std::fs::write(out.join("public_key.hex"), &public_key)?;
        let sums: String = manifest.files.iter().map(|f| format!("{}  {}\n", f.sha256, f.path)).collect();
        std::fs::write(out.join("SHA256SUMS"), sums)?;
        std::fs::write(out.join("VERIFY.txt"), verify_text(&manifest))?;
        Ok(ExportReport { dir: out.to_path_buf(), manifest })
    }

    async fn copy_out(&self, key: &ObjPath, out: &Path, rel: &str) -> Result<ManifestFile> {
        let mut stream = self.vault.read_stream(key).await?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(out.join(rel))?);
        let (mut b3, mut sha, mut size) = (blake3::Hasher::new(), Sha256::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            b3.update(&chunk);
            sha.update(&chunk);
            size += chunk.len() as u64;
            f.write_all(&chunk)?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(ManifestFile {
            path: rel.into(),
            size,
            blake3: b3.finalize().to_hex().to_string(),
            sha256: hex::encode(sha.finalize()),
        })
    }
}

fn write_file(out: &Path, rel: &str, bytes: Vec<u8>) -> Result<ManifestFile> {
    std::fs::write(out.join(rel), &bytes)?;
    Ok(ManifestFile {
        path: rel.into(),
        size: bytes.len() as u64,
        blake3: blake3::hash(&bytes).to_hex().to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

fn verify_text(m: &Manifest) -> String {
    format!(
        "E-patrol evidence export ({format})\n\
         Evidence BLAKE3: {d}\nExported {at} by {by}; signing key id {k}.\n\n\
         To verify with E-patrol:\n    epatrol verify-export <this directory>\n\n\
         To verify without it:\n\
         1. sha256sum -c SHA256SUMS            (every file is intact)\n\
         2. b3sum footage/*                    (BLAKE3 of the footage equals the digest above)\n\
         3. check manifest.sig: an Ed25519 signature (hex) over the exact bytes of manifest.json,\n   \
            by the public key in public_key.hex (hex, 32 bytes); confirm that key with the\n   \
            issuing authority.\n\
         4. custody.jsonl: each line's `hash` is BLAKE3 (derive_key context \"epatrol custody v1\") of\n   \
            the JSON array [seq, at, actor, action, subject, detail, prev_hash]; `signature` is\n   \
            Ed25519 over the 32 hash bytes, by the same key.\n",
        format = m.format,
        d = m.evidence_digest,
        at = m.exported_at,
        by = m.exported_by,
        k = m.key_id
    )
}

/// Checks an export package; returns one line per problem (empty: intact). When
/// `trusted_key` is given (hex), the package must be signed by it.
pub fn verify_export(dir: &Path, trusted_key: Option<&str>) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let manifest_bytes = std::fs::read(dir.join("manifest.json"))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| StoreError::Invalid(format!("manifest.json: {e}")))?;
    let public = keys::parse_public(&manifest.public_key)?;
    if let Some(t) = trusted_key
        && t.trim() != manifest.public_key
    {
        problems.push("manifest: signed by a key other than the trusted one".into());
    }
    let sig = std::fs::read_to_string(dir.join("manifest.sig"))?;
    if !keys::verify_hex(&public, &manifest_bytes, sig.trim()) {
        problems.push("manifest.sig: signature does not match manifest.json".into());
    }
    for f in &manifest.files {
        let path = dir.join(&f.path);
        match hash_path(&path) {
            Ok((size, b3, sha)) if size == f.size && b3 == f.blake3 && sha == f.sha256 => {}
            Ok(_) => problems.push(format!("{}: content does not match the manifest", f.path)),
            Err(e) => problems.push(format!("{}: {e}", f.path)),
        }
        if f.path.starts_with("footage/") && f.blake3 != manifest.evidence_digest {
            problems.push(format!("{}: is not the evidence the manifest names", f.path));
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("custody.jsonl")) {
        for (i, line) in text.lines().enumerate() {
            match serde_json::from_str::<CustodyEntry>(line) {
                Ok(entry) => {
                    if let Err(msg) = entry.check(&public) {
                        problems.push(format!("custody.jsonl line {}: {msg}", i + 1));
                    }
                    if entry.subject != manifest.evidence_digest {
                        problems.push(format!("custody.jsonl line {}: about another item", i + 1));
                    }
                }
                Err(e) => problems.push(format!("custody.jsonl line {}: {e}", i + 1)),
            }
        }
    }
    Ok(problems)
}

/// Size, BLAKE3 and SHA-256 of a file, streamed.
fn hash_path(path: &Path) -> std::io::Result<(u64, String, String)> {
    struct Both(blake3::Hasher, Sha256);
    impl Write for Both {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            self.1.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut both = Both(blake3::Hasher::new(), Sha256::new());
    let n = std::io::copy(&mut std::fs::File::open(path)?, &mut both)?;
    Ok((n, both.0.finalize().to_hex().to_string(), hex::encode(both.1.finalize())))
}
