//! Content-addressed blob vault over any `object_store` backend (memory, local dir, S3).
//!
//! Key layout:
//! - `blobs/<blake3-hex>`: committed footage, immutable, created only if absent (dedup);
//! - `staging/<id>` and `staging/<upload-id>/<part>`: bytes in flight, never read as evidence;
//! - `thumbs/<evidence-digest>/<n>.jpg`: keyframe thumbnails.
//!
//! The tier of a blob is carried as the S3 object tag `tier=<tier>` (for lifecycle rules)
//! and, where the bucket has Object Lock, as object retention; see [`s3ctl`].

mod digest;
mod export;
mod ingest;
pub mod s3ctl;
mod service;
mod upload;
mod verify;

pub use crate::model::Source;
pub use digest::{Digest, merge_parts, part_chaining_value, valid_part_size};
pub use export::{ExportReport, verify_export};
pub use ingest::{IngestOutcome, IngestRequest, IngestStatus, RecoveryReport};
pub use service::{DEFAULT_VAULT_DIR, EvidenceVault, host_name, node_name};
pub use upload::UploadStatus;
pub use verify::VerifyReport;

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Result, StoreError};
use crate::model::Tier;

/// Size of each read from the source and of each multipart part (S3 wants ≥ 5 MiB).
pub const CHUNK: usize = 8 << 20;

/// Which kind of backend a vault sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Process memory (tests).
    Memory,
    /// A local directory.
    Local,
    /// An S3-compatible service.
    S3,
}

/// What the caller claims about an upload; checked against the bytes received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Declared {
    /// Exact length in bytes.
    pub len: Option<u64>,
    /// BLAKE3 digest.
    pub digest: Option<Digest>,
}

/// Bytes hashed and stored under a staging key, not yet committed.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Staging object key.
    pub key: ObjPath,
    /// Digest of the bytes.
    pub digest: Digest,
    /// Length of the bytes.
    pub size: u64,
}

/// Outcome of committing a staged object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The blob did not exist and was created.
    Created,
    /// An identical blob was already there; nothing was written.
    AlreadyPresent,
}

/// The blob vault.
#[derive(Debug, Clone)]
pub struct Vault {
    store: Arc<dyn ObjectStore>,
    kind: BackendKind,
    s3: Option<Arc<s3ctl::S3Control>>,
    concurrency: usize,
    local_root: Option<std::path::PathBuf>,
}

/// Key of the blob with `digest`.
pub fn blob_key(digest: &Digest) -> ObjPath {
    ObjPath::from(format!("blobs/{}", digest.to_hex()))
}

/// A random id for staging keys and uploads (128 bits, hex).
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Vault {
    /// An in-memory vault (tests).
    pub fn memory() -> Self {
        Self { store: Arc::new(InMemory::new()), kind: BackendKind::Memory, s3: None, concurrency: 4, local_root: None }
    }

    /// A vault in a local directory (created if missing). Writes are fsynced, so a
    /// committed blob survives power loss, not just a process crash.
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let fs = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true).with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(fs),
            kind: BackendKind::Local,
            s3: None,
            concurrency: 2,
            local_root: Some(dir.to_path_buf()),
        })
    }

    /// An S3 vault. `url` is `s3://bucket[?endpoint=..&region=..&allow_http=true]`;
    /// credentials and anything not in the URL come from the usual `AWS_*` variables.
    pub fn s3(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| StoreError::Invalid(format!("vault url {url:?}: {e}")))?;
        let bucket =
            parsed.host_str().ok_or_else(|| StoreError::Invalid(format!("vault url {url:?} has no bucket")))?;
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in parsed.query_pairs() {
            b = match k.as_ref() {
                "endpoint" => b.with_endpoint(v.to_string()),
                "region" => b.with_region(v.to_string()),
                "allow_http" => b.with_allow_http(v == "true"),
                other => {
                    return Err(StoreError::Invalid(format!("vault url: unknown option {other:?}")));
                }
            };
        }
        Self::s3_builder(b)
    }

    /// An S3 vault from a configured builder (bucket, endpoint, credentials set). Turns on
    /// the conditional requests dedup relies on: `If-None-Match: *` puts and
    /// create-if-absent copies (multipart copy with a conditional complete).
    pub fn s3_builder(b: AmazonS3Builder) -> Result<Self> {
        let b =
            b.with_conditional_put(S3ConditionalPut::ETagMatch).with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
        let ctl = s3ctl::S3Control::from_builder(&b)?;
        let store = b.build()?;
        Ok(Self {
            store: Arc::new(store),
            kind: BackendKind::S3,
            s3: Some(Arc::new(ctl)),
            concurrency: 8,
            local_root: None,
        })
    }

    /// Opens a vault from a location string: `memory://`, `s3://...`, `file:///dir` or a path.
    pub fn open(location: &str) -> Result<Self> {
        if location == "memory://" {
            Ok(Self::memory())
        } else if location.starts_with("s3://") {
            Self::s3(location)
        } else {
            Self::local(std::path::Path::new(location.strip_prefix("file://").unwrap_or(location)))
        }
    }

    /// Backend kind.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The underlying object store (for tests and tools).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Streams `reader` into a new staging object while hashing it, never holding more
    /// than a few chunks in memory. Checks `declared` before returning; on any error the
    /// staging object is aborted or removed.
    pub async fn stage<R: AsyncRead + Unpin>(&self, reader: R, declared: Declared) -> Result<Staged> {
        let key = ObjPath::from(format!("staging/{}", random_id()));
        self.stage_at(key, reader, declared).await
    }

    /// Stages a local file at `key`. On a local vault the kernel copies the file
    /// ([`local_copy`]); elsewhere a dedicated thread reads and hashes whole chunks and hands
    /// them to the uploader through a short queue, so reading, hashing and writing overlap.
    pub async fn stage_file(&self, key: ObjPath, path: &std::path::Path, declared: Declared) -> Result<Staged> {
        let staged = match &self.local_root {
            Some(root) => local_copy(root.clone(), key, path.to_path_buf()).await?,
            None => return self.stage_file_streamed(key, path, declared).await,
        };
        if let Err(e) = check_declared(&staged, declared) {
            self.discard(&staged.key).await;
            return Err(e);
        }
        Ok(staged)
    }

    /// [`Vault::stage_file`] through `object_store` multipart writes (any backend).
    pub async fn stage_file_streamed(
        &self,
        key: ObjPath,
        path: &std::path::Path,
        declared: Declared,
    ) -> Result<Staged> {
        use std::io::Read;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let limit = declared.len;
        let path = path.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || -> Result<(Digest, u64)> {
            let mut f = std::fs::File::open(&path)?;
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            loop {
                let mut buf = BytesMut::zeroed(CHUNK);
                let mut n = 0;
                while n < CHUNK {
                    match f.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                size += n as u64;
                if let Some(limit) = limit
                    && size > limit
                {
                    return Err(StoreError::Integrity(format!("more than the declared {limit} bytes")));
                }
                hasher.update(&buf);
                if tx.blocking_send(buf.freeze()).is_err() {
                    // the uploader stopped (it failed); its error is the one to report
                    break;
                }
            }
            Ok((hasher.finalize().into(), size))
        });
        let upload = self.store.put_multipart(&key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut write_err = None;
        while let Some(chunk) = rx.recv().await {
            if let Err(e) = writer.wait_for_capacity(self.concurrency).await {
                write_err = Some(e);
                break;
            }
            writer.put(chunk);
        }
        drop(rx);
        let read = reader.await.expect("reader thread panicked");
        let (digest, size) = match (read, write_err) {
            (Ok(r), None) => r,
            (Err(e), _) => {
                let _ = writer.abort().await;
                return Err(e);
            }
            (_, Some(e)) => {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        };
        writer.finish().await?;
        let staged = Staged { key, digest, size };
        if let Err(e) = check_declared(&staged, declared) {
            self.discard(&staged.key).await;
            return Err(e);
        }
        Ok(staged)
    }

    /// Like [`Vault::stage`] with a caller-chosen staging key (the ingest journal names it first).
    pub async fn stage_at<R: AsyncRead + Unpin>(
        &self,
        key: ObjPath,
        mut reader: R,
        declared: Declared,
    ) -> Result<Staged> {
        let upload = self.store.put_multipart(&key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let result: Result<()> = async {
            loop {
                let mut buf = BytesMut::with_capacity(CHUNK);
                // fill a whole chunk (reads may return less) so parts are CHUNK-aligned
                while buf.len() < CHUNK {
                    let n = reader.read_buf(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                }
                if buf.is_empty() {
                    break;
                }
                let chunk = buf.freeze();
                size += chunk.len() as u64;
                if let Some(limit) = declared.len
                    && size > limit
                {
                    return Err(StoreError::Integrity(format!("more than the declared {limit} bytes")));
                }
                hasher.update(&chunk);
                writer.wait_for_capacity(self.concurrency).await?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await?;
        let digest = Digest::from(hasher.finalize());
        let staged = Staged { key, digest, size };
        if let Err(e) = check_declared(&staged, declared) {
            self.discard(&staged.key).await;
            return Err(e);
        }
        Ok(staged)
    }

    /// Moves a staged object to `blobs/<digest>` if no such blob exists, then removes the
    /// staging object. Two writers of the same bytes race safely: exactly one creates.
    pub async fn commit(&self, staged: &Staged) -> Result<Commit> {
        let to = blob_key(&staged.digest);
        let outcome = match self.store.copy_if_not_exists(&staged.key, &to).await {
            Ok(()) => Commit::Created,
            Err(object_store::Error::AlreadyExists { .. }) => Commit::AlreadyPresent,
            Err(e) => return Err(e.into()),
        };
        self.discard(&staged.key).await;
        Ok(outcome)
    }

    /// Best-effort removal of a staging object (already gone is fine), including the
    /// partial files a killed local multipart write leaves next to it (`<key>#<n>`).
    pub async fn discard(&self, key: &ObjPath) {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(%key, error = %e, "could not remove staging object"),
        }
        if let Some(root) = &self.local_root {
            let file = root.join(key.as_ref());
            let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
                return;
            };
            let prefix = format!("{name}#");
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }

    /// Stores small bytes (a thumbnail) at `key`, create-if-absent.
    pub async fn put_small(&self, key: &ObjPath, bytes: Bytes) -> Result<()> {
        let opts = object_store::PutOptions::from(object_store::PutMode::Create);
        match self.store.put_opts(key, PutPayload::from(bytes), opts).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Size of the blob, or `None` if it does not exist.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.store.head(&blob_key(digest)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes `range` of a blob (for video seeking). Errors if the range is empty or
    /// reaches past the end.
    pub async fn read_range(&self, digest: &Digest, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return Err(StoreError::Invalid(format!("empty range {}..{}", range.start, range.end)));
        }
        let key = blob_key(digest);
        let size = match self.store.head(&key).await {
            Ok(m) => m.size,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound(format!("blob {digest}")));
            }
            Err(e) => return Err(e.into()),
        };
        if range.end > size {
            return Err(StoreError::Invalid(format!(
                "range {}..{} past the end ({size} bytes)",
                range.start, range.end
            )));
        }
        Ok(self.store.get_range(&key, range).await?)
    }

    /// Bytes `range` of a blob as a stream of chunks, so a large range (a video player's
    /// `bytes=0-`) is never held in memory whole. The caller checks the range against
    /// the catalogued size first.
    pub async fn read_range_stream(
        &self,
        digest: &Digest,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        if range.start >= range.end {
            return Err(StoreError::Invalid(format!("empty range {}..{}", range.start, range.end)));
        }
        let opts =
            object_store::GetOptions { range: Some(object_store::GetRange::Bounded(range)), ..Default::default() };
        let res = match self.store.get_opts(&blob_key(digest), opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound(format!("blob {digest}"))),
            Err(e) => return Err(e.into()),
        };
        Ok(res.into_stream().map(|r| r.map_err(StoreError::from)).boxed())
    }

    /// The whole blob as a stream of chunks.
    pub async fn read_stream(&self, key: &ObjPath) -> Result<BoxStream<'static, Result<Bytes>>> {
        let res = match self.store.get(key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound(key.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(res.into_stream().map(|r| r.map_err(StoreError::from)).boxed())
    }

    /// Streams a whole blob into `w` (a file, stdout); returns the bytes written.
    pub async fn copy_blob_to<W: std::io::Write>(&self, digest: &Digest, w: &mut W) -> Result<u64> {
        let mut stream = self.read_stream(&blob_key(digest)).await?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            w.write_all(&chunk)?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// Re-reads an object and returns its BLAKE3 digest and length.
    pub async fn rehash(&self, key: &ObjPath) -> Result<(Digest, u64)> {
        let mut stream = self.read_stream(key).await?;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hasher.finalize().into(), size))
    }

    /// Deletes an object; `Ok(false)` if it was already gone (so sweeps can repeat).
    pub async fn delete_key(&self, key: &ObjPath) -> Result<bool> {
        match self.store.delete(key).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object key under `prefix` (`blobs`, `staging`, `thumbs`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(ObjPath, u64)>> {
        let prefix = ObjPath::from(prefix);
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&prefix));
        while let Some(m) = s.next().await {
            let m = m?;
            out.push((m.location, m.size));
        }
        Ok(out)
    }

    /// Mirrors the catalog's hold state on the object where the bucket has Object Lock
    /// (S3 legal hold); elsewhere the catalog is the only record.
    pub async fn apply_legal_hold(&self, digest: &Digest, on: bool) -> Result<()> {
        if let Some(ctl) = &self.s3
            && ctl.object_lock().await?
        {
            ctl.put_legal_hold(blob_key(digest).as_ref(), on).await?;
        }
        Ok(())
    }

    /// Reflects a tier and deadline on the stored object where the backend can: S3 tag
    /// `tier=<tier>` and, on Object Lock buckets, COMPLIANCE retention until the deadline
    /// (S3 itself refuses to shorten it). Elsewhere the catalog is the only record.
    pub async fn apply_retention(&self, digest: &Digest, tier: Tier, until: time::OffsetDateTime) -> Result<()> {
        if let Some(ctl) = &self.s3 {
            let key = blob_key(digest);
            ctl.put_tier_tag(key.as_ref(), tier).await?;
            if ctl.object_lock().await? && until > time::OffsetDateTime::now_utc() {
                ctl.put_retention(key.as_ref(), until).await?;
            }
        }
        Ok(())
    }

    /// Direct S3 control (tags, object lock), when the backend is S3.
    pub fn s3_control(&self) -> Option<&s3ctl::S3Control> {
        self.s3.as_deref()
    }
}

/// Local fast path: `std::fs::copy` (in-kernel `copy_file_range`, no user-space copy) into
/// a hidden `<key>#copy` file while another thread hashes the source; then fsync, and rename
/// to the staging key. The hash is of the source, so the source must not change meanwhile:
/// its length and mtime are compared before and after, and the copy's length is checked.
/// (`verify` later re-hashes the stored blob itself.)
async fn local_copy(root: std::path::PathBuf, key: ObjPath, src: std::path::PathBuf) -> Result<Staged> {
    use std::io::Read;
    let dest = root.join(key.as_ref());
    let tmp = dest.with_file_name(format!("{}#copy", dest.file_name().and_then(|n| n.to_str()).unwrap_or("staging")));
    let parent = dest.parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| root.clone());
    std::fs::create_dir_all(&parent)?;
    let before = std::fs::metadata(&src)?;
    let (s1, t1, p1) = (src.clone(), tmp.clone(), parent.clone());
    let copier = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        // Another ingest deleting the last staging object removes the empty `staging/`
        // directory (the object store's automatic cleanup), possibly between our
        // `create_dir_all` and the copy creating its file: recreate it and try again.
        let mut attempt = 0;
        let n = loop {
            match std::fs::copy(&s1, &t1) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 8 && s1.exists() => {
                    attempt += 1;
                    std::fs::create_dir_all(&p1)?;
                }
                r => break r?,
            }
        };
        std::fs::File::open(&t1)?.sync_all()?;
        Ok(n)
    });
    let s2 = src.clone();
    let hasher = tokio::task::spawn_blocking(move || -> std::io::Result<(Digest, u64)> {
        let mut f = std::fs::File::open(&s2)?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            size += n as u64;
        }
        Ok((h.finalize().into(), size))
    });
    let (copied, hashed) = (copier.await.expect("copy thread"), hasher.await.expect("hash thread"));
    let result = (|| -> Result<(Digest, u64)> {
        let copied = copied?;
        let (digest, size) = hashed?;
        let after = std::fs::metadata(&src)?;
        if copied != size || after.len() != before.len() || after.modified()? != before.modified()? {
            return Err(StoreError::Integrity(format!("{} changed while it was being ingested", src.display())));
        }
        std::fs::rename(&tmp, &dest)?;
        std::fs::File::open(&parent)?.sync_all()?;
        Ok((digest, size))
    })();
    match result {
        Ok((digest, size)) => Ok(Staged { key, digest, size }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn check_declared(staged: &Staged, declared: Declared) -> Result<()> {
    if let Some(len) = declared.len
        && len != staged.size
    {
        return Err(StoreError::Integrity(format!("declared {len} bytes, received {}", staged.size)));
    }
    if let Some(d) = declared.digest
        && d != staged.digest
    {
        return Err(StoreError::Integrity(format!("declared digest {d}, received bytes hash to {}", staged.digest)));
    }
    Ok(())
}
