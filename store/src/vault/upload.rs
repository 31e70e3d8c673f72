//! Resumable uploads for docks: the file is sent in fixed-size parts, in any order, over
//! as many connections or power cycles as it takes. Each part is stored as a staging object
//! with its BLAKE3 chaining value, so completing needs no re-read to know the digest; the
//! parts are then assembled (re-hashed on the way, as a check) and ingested as usual.

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use serde::Serialize;
use time::OffsetDateTime;

use super::ingest::{IngestOutcome, IngestRequest};
use object_store::ObjectStoreExt;

use super::{Declared, Digest, EvidenceVault, merge_parts, part_chaining_value, random_id, valid_part_size};
use crate::catalog::uploads::{self, UploadRow};
use crate::error::{Result, StoreError};
use crate::model::UploadState;
use crate::video::{self, Rejection};

/// Where an upload stands; a resuming client sends the parts not in `received`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadStatus {
    /// Upload id.
    pub id: String,
    /// Part size (all parts but the last).
    pub part_size: u64,
    /// Total length declared at the start.
    pub declared_len: u64,
    /// Number of parts expected.
    pub parts: u64,
    /// Indices of the parts already stored.
    pub received: Vec<u64>,
    /// `open`, `completed` or `aborted`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: UploadState,
    /// Who started it (only they may add parts or complete it over the API).
    pub owner: String,
}

fn part_key(id: &str, idx: u64) -> ObjPath {
    ObjPath::from(format!("staging/{id}/part-{idx:08}"))
}

impl EvidenceVault {
    /// Starts a resumable upload for `owner` of `declared_len` bytes in parts of `part_size`
    /// (a power of two ≥ 1 KiB; ≥ 5 MiB on S3-backed vaults is the provider's rule, not ours).
    pub async fn begin_upload(
        &self,
        owner: &str,
        declared_len: u64,
        declared_digest: Option<Digest>,
        part_size: u64,
    ) -> Result<UploadStatus> {
        if !valid_part_size(part_size) {
            return Err(StoreError::Invalid(format!("part size {part_size} must be a power of two ≥ 1024")));
        }
        if declared_len == 0 {
            return Err(StoreError::Invalid("empty upload".into()));
        }
        let id = random_id();
        let row = UploadRow {
            id: id.clone(),
            part_size: part_size as i64,
            declared_len: declared_len as i64,
            declared_digest: declared_digest.map(|d| d.to_hex()),
            created_at: self.clock.now(),
            state: UploadState::Open,
            owner: owner.into(),
        };
        uploads::insert(&mut *self.catalog.acquire().await?, &row).await?;
        self.upload_status(&id).await
    }

    /// Where upload `id` stands.
    pub async fn upload_status(&self, id: &str) -> Result<UploadStatus> {
        let mut conn = self.catalog.acquire().await?;
        let u = uploads::get(&mut conn, id).await?.ok_or_else(|| StoreError::NotFound(format!("upload {id}")))?;
        let part_size = u.part_size as u64;
        let declared_len = u.declared_len as u64;
        let received = uploads::received_parts(&mut conn, id).await?.into_iter().map(|v| v as u64).collect();
        Ok(UploadStatus {
            id: id.into(),
            part_size,
            declared_len,
            parts: declared_len.div_ceil(part_size),
            received,
            state: u.state,
            owner: u.owner,
        })
    }

    /// Stores part `idx` (sending a part again replaces it). Its length must be exactly
    /// `part_size`, or the remainder for the last part.
    pub async fn upload_part(&self, id: &str, idx: u64, data: Bytes) -> Result<()> {
        let st = self.upload_status(id).await?;
        if st.state != UploadState::Open {
            return Err(StoreError::Invalid(format!("upload {id} is {}", st.state)));
        }
        if idx >= st.parts {
            return Err(StoreError::Invalid(format!("part {idx} out of range (0..{})", st.parts)));
        }
        let want = if idx + 1 == st.parts { st.declared_len - idx * st.part_size } else { st.part_size };
        if data.len() as u64 != want {
            return Err(StoreError::Integrity(format!("part {idx} has {} bytes, expected {want}", data.len())));
        }
        // a lone part is the whole input: its digest is a root hash, not a chaining value
        let cv = if st.parts == 1 {
            *blake3::hash(&data).as_bytes()
        } else {
            let d = data.clone();
            let offset = idx * st.part_size;
            tokio::task::spawn_blocking(move || part_chaining_value(offset, &d)).await.expect("hash task")
        };
        self.vault.store().put(&part_key(id, idx), data.into()).await?;
        let mut conn = self.catalog.acquire().await?;
        uploads::put_part(&mut conn, id, idx as i64, want as i64, &hex::encode(cv)).await
    }

    /// The digest of a complete upload, from the parts' chaining values alone.
    pub async fn upload_digest(&self, id: &str) -> Result<Digest> {
        let st = self.upload_status(id).await?;
        if st.received.len() as u64 != st.parts {
            let missing: Vec<u64> = (0..st.parts).filter(|i| !st.received.contains(i)).collect();
            return Err(StoreError::Invalid(format!("upload {id} is missing parts {missing:?}")));
        }
        let rows = uploads::part_cvs(&mut *self.catalog.acquire().await?, id).await?;
        let mut cvs = Vec::with_capacity(rows.len());
        for h in rows {
            let b: [u8; 32] = hex::decode(h)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| StoreError::Integrity("bad part cv".into()))?;
            cvs.push(b);
        }
        Ok(Digest(if cvs.len() == 1 { cvs[0] } else { merge_parts(st.part_size, st.declared_len, &cvs) }))
    }

    /// Completes upload `id` and ingests it like a file. The parts are assembled into a
    /// journaled staging object; probing and thumbnails read a local copy of it.
    pub async fn complete_upload(&self, id: &str, req: &IngestRequest) -> Result<IngestOutcome> {
        let st = self.upload_status(id).await?;
        let digest = self.upload_digest(id).await?;
        let declared = uploads::get(&mut *self.catalog.acquire().await?, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("upload {id}")))?
            .declared_digest;
        if let Some(d) = declared
            && d != digest.to_hex()
        {
            return Err(StoreError::Integrity(format!("upload {id}: declared digest {d}, parts hash to {digest}")));
        }
        let journal_id = random_id();
        let staging = ObjPath::from(format!("staging/{id}/assembled"));
        self.journal_begin(&journal_id, &staging).await?;
        let res = self.assemble_and_ingest(id, &st, digest, &staging, &journal_id, req).await;
        if res.is_err() {
            self.rollback_journal(&journal_id).await?;
        }
        let outcome = res?;
        for i in 0..st.parts {
            self.vault.discard(&part_key(id, i)).await;
        }
        uploads::set_state(&mut *self.catalog.acquire().await?, id, UploadState::Completed).await?;
        Ok(outcome)
    }

    async fn assemble_and_ingest(
        &self,
        id: &str,
        st: &UploadStatus,
        digest: Digest,
        staging: &ObjPath,
        journal_id: &str,
        req: &IngestRequest,
    ) -> Result<IngestOutcome> {
        // parts → one staging object, streamed part by part; stage_at re-hashes and checks
        let vault = self.vault.clone();
        let parts = st.parts;
        let id_owned = id.to_string();
        let stream = async_stream_parts(vault, id_owned, parts);
        let staged = self
            .vault
            .stage_at(staging.clone(), stream, Declared { len: Some(st.declared_len), digest: Some(digest) })
            .await?;

        // a local copy for ffmpeg: the vault's own file when local, else a temp file
        let tmp_dir = self.data_dir().join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let local = tmp_dir.join(format!("{id}.upload"));
        {
            use futures::StreamExt;
            use std::io::Write;
            let mut f = std::io::BufWriter::new(std::fs::File::create(&local)?);
            let mut s = self.vault.read_stream(&staged.key).await?;
            while let Some(c) = s.next().await {
                f.write_all(&c?)?;
            }
            f.flush()?;
        }
        let l = local.clone();
        let probed = tokio::task::spawn_blocking(move || video::probe(&l)).await.expect("probe task");
        let name = format!("upload:{id}");
        let out = match probed {
            Ok(media) => self.finish(&local, &name, req, media, staged, journal_id, OffsetDateTime::now_utc()).await,
            Err(Rejection(reason)) => {
                self.vault.discard(&staged.key).await;
                self.journal_end(journal_id).await?;
                self.reject(&local, &name, req, reason).await
            }
        };
        let _ = std::fs::remove_file(&local);
        out
    }
}

/// An `AsyncRead` over the upload's parts in order, one part in memory at a time.
fn async_stream_parts(vault: super::Vault, id: String, parts: u64) -> impl tokio::io::AsyncRead + Unpin {
    use futures::{StreamExt, TryStreamExt};
    let s = futures::stream::iter(0..parts)
        .then(move |i| {
            let vault = vault.clone();
            let id = id.clone();
            async move { vault.store().get(&part_key(&id, i)).await?.bytes().await }
        })
        .map_err(std::io::Error::other);
    tokio_util_like::reader(s.boxed())
}

/// Minimal stream-of-bytes → `AsyncRead` adapter (avoids a tokio-util dependency).
mod tokio_util_like {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::{Buf, Bytes};
    use futures::Stream;
    use futures::stream::BoxStream;
    use tokio::io::{AsyncRead, ReadBuf};

    pub struct Reader {
        s: BoxStream<'static, std::io::Result<Bytes>>,
        cur: Bytes,
    }

    pub fn reader(s: BoxStream<'static, std::io::Result<Bytes>>) -> Reader {
        Reader { s, cur: Bytes::new() }
    }

    impl AsyncRead for Reader {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            loop {
                if !self.cur.is_empty() {
                    let n = self.cur.len().min(buf.remaining());
                    buf.put_slice(&self.cur[..n]);
                    self.cur.advance(n);
                    return Poll::Ready(Ok(()));
                }
                match Pin::new(&mut self.s).poll_next(cx) {
                    Poll::Ready(Some(Ok(b))) => self.cur = b,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
    }
}
