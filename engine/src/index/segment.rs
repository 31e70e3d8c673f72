//! Persistence as immutable segment files: an append-only log of vector segments and
//! tombstone lists, replayed in sequence order into any [`GalleryIndex`].
//!
//! * `seg-<seq>.eps`: ids + row-major f32 vectors; `tomb-<seq>.ept`: removed ids.
//! * Every file: a 64-byte header (magic, version, kind, seq, base, dim, count, CRC-32 of
//!   the payload, CRC-32 of the header), then 64-byte-aligned sections, so a segment can
//!   be memory-mapped and its vectors used in place.
//! * Writes are crash-safe: `*.tmp` file, fsync, rename, fsync of the directory. A file
//!   is either complete under its final name or absent; leftover `*.tmp` files are
//!   deleted at open.
//! * Every file is fully verified at open (length and both checksums); any failure is
//!   [`EngineError::Corrupt`] and nothing is served: the caller rebuilds from the catalog.
//! * Compaction writes one segment holding every live vector with `base = last seq`;
//!   files with `seq <= base` are superseded and deleted (also if a crash interrupted
//!   that deletion).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::{FlatIndex, GalleryIndex, check_add};
use crate::{EngineError, Result};

const MAGIC: &[u8; 8] = b"EPIDX\0v1";
const VERSION: u32 = 1;
const HEADER: usize = 64;
const KIND_SEGMENT: u32 = 1;
const KIND_TOMBS: u32 = 2;

fn align64(n: usize) -> usize {
    n.next_multiple_of(64)
}

/// Parsed, verified header.
#[derive(Debug, Clone, Copy)]
struct Header {
    kind: u32,
    seq: u64,
    base: u64,
    dim: u32,
    count: u64,
}

impl Header {
    fn encode(&self, payload_crc: u32) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.kind.to_le_bytes());
        h[16..24].copy_from_slice(&self.seq.to_le_bytes());
        h[24..32].copy_from_slice(&self.base.to_le_bytes());
        h[32..36].copy_from_slice(&self.dim.to_le_bytes());
        h[40..48].copy_from_slice(&self.count.to_le_bytes());
        h[48..52].copy_from_slice(&payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Expected total file length.
    fn file_len(&self) -> usize {
        let ids = align64(self.count as usize * 8);
        match self.kind {
            KIND_SEGMENT => HEADER + ids + self.count as usize * self.dim as usize * 4,
            _ => HEADER + self.count as usize * 8,
        }
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Verifies magic, version, header CRC, length and payload CRC.
fn verify(path: &Path, bytes: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER {
        return Err(corrupt(path, format!("{} bytes, shorter than the header", bytes.len())));
    }
    if &bytes[0..8] != MAGIC {
        return Err(corrupt(path, "bad magic"));
    }
    if crc32fast::hash(&bytes[..60]) != u32_at(bytes, 60) {
        return Err(corrupt(path, "header checksum mismatch"));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(corrupt(path, format!("unsupported version {version}")));
    }
    let h = Header {
        kind: u32_at(bytes, 12),
        seq: u64_at(bytes, 16),
        base: u64_at(bytes, 24),
        dim: u32_at(bytes, 32),
        count: u64_at(bytes, 40),
    };
    if h.kind != KIND_SEGMENT && h.kind != KIND_TOMBS {
        return Err(corrupt(path, format!("unknown kind {}", h.kind)));
    }
    let want = (h.count as usize)
        .checked_mul(8 + 4 * h.dim as usize)
        .map(|_| h.file_len())
        .ok_or_else(|| corrupt(path, "count overflows"))?;
    if bytes.len() != want {
        return Err(corrupt(path, format!("length {} != expected {want} (torn write?)", bytes.len())));
    }
    if crc32fast::hash(&bytes[HEADER..]) != u32_at(bytes, 48) {
        return Err(corrupt(path, "payload checksum mismatch"));
    }
    Ok(h)
}

/// A verified, memory-mapped segment or tombstone file.
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    header: Header,
    map: Mmap,
}

impl SegmentFile {
    /// Maps and fully verifies a file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path)?;
        // SAFETY: segment files are immutable once renamed into place: this module never
        // opens a published file for writing, and files are replaced only by rename, which
        // leaves existing mappings pointing at the old inode. Changing them behind the
        // store's back is outside its contract (and caught by the checksum at next open).
        let map = unsafe { Mmap::map(&file)? };
        let header = verify(path, &map)?;
        Ok(SegmentFile { path: path.to_path_buf(), header, map })
    }

    /// Sequence number (order of replay).
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids stored (vector ids for a segment, removed ids for a tombstone file).
    pub fn ids(&self) -> &[u64] {
        let n = self.header.count as usize;
        // The mapping is page-aligned and the section starts at 64: the cast cannot fail.
        bytemuck::cast_slice(&self.map[HEADER..HEADER + 8 * n])
    }

    /// Row-major vectors of a segment (empty for a tombstone file), used in place.
    pub fn vectors(&self) -> &[f32] {
        if self.header.kind != KIND_SEGMENT {
            return &[];
        }
        let start = HEADER + align64(self.header.count as usize * 8);
        bytemuck::cast_slice(&self.map[start..])
    }

    /// True for a vector segment, false for a tombstone list.
    pub fn is_segment(&self) -> bool {
        self.header.kind == KIND_SEGMENT
    }
}

/// Writes `name` in `dir` atomically: temp file, fsync, rename, fsync the directory.
fn write_atomic(dir: &Path, name: &str, header: Header, ids: &[u64], vectors: &[f32]) -> Result<PathBuf> {
    let mut crc = crc32fast::Hasher::new();
    let ids_bytes: &[u8] = bytemuck::cast_slice(ids);
    let pad = vec![0u8; align64(ids_bytes.len()) - ids_bytes.len()];
    let vec_bytes: &[u8] = bytemuck::cast_slice(vectors);
    crc.update(ids_bytes);
    if header.kind == KIND_SEGMENT {
        crc.update(&pad);
        crc.update(vec_bytes);
    }
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    {
        let f = File::options().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&header.encode(crc.finalize()))?;
        w.write_all(ids_bytes)?;
        if header.kind == KIND_SEGMENT {
            w.write_all(&pad)?;
            w.write_all(vec_bytes)?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &dst)?;
    File::open(dir)?.sync_all()?;
    Ok(dst)
}

/// A directory of segment and tombstone files for one index.
#[derive(Debug)]
pub struct SegmentStore {
    dir: PathBuf,
    dim: usize,
    /// Shared with indexes that re-rank from the mapped rows ([`GalleryIndex::add_segment`]).
    files: Vec<Arc<SegmentFile>>,
    next_seq: u64,
}

fn parse_name(name: &str) -> Option<(bool, u64)> {
    let (seg, rest) = if let Some(r) = name.strip_prefix("seg-") {
        (true, r.strip_suffix(".eps")?)
    } else {
        (false, name.strip_prefix("tomb-")?.strip_suffix(".ept")?)
    };
    rest.parse().ok().map(|s| (seg, s))
}

impl SegmentStore {
    /// Opens (creating if needed) the store in `dir` for `dim`-dimensional vectors.
    /// Verifies every file; any corrupt file, or a file of another dimension, is an error.
    pub fn open(dir: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                // An interrupted write: never published, safe to drop.
                fs::remove_file(&path)?;
                continue;
            }
            let Some((is_seg, seq)) = parse_name(name) else {
                continue;
            };
            let f = SegmentFile::open(&path)?;
            if f.seq() != seq || f.is_segment() != is_seg {
                return Err(corrupt(&path, "header does not match the file name"));
            }
            if f.header.dim as usize != dim {
                return Err(EngineError::Invalid(format!(
                    "{}: dimension {} but the index expects {dim}",
                    path.display(),
                    f.header.dim
                )));
            }
            files.push(Arc::new(f));
        }
        files.sort_by_key(|f| f.seq());
        // A compacted segment supersedes everything up to its base.
        let base = files.iter().map(|f| f.header.base).max().unwrap_or(0);
        let (old, live): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.seq() <= base);
        for f in old {
            fs::remove_file(f.path())?;
        }
        let next_seq = live.last().map_or(base, |f| f.seq()) + 1;
        Ok(SegmentStore { dir, dim, files: live, next_seq })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The verified files in replay order.
    pub fn files(&self) -> &[Arc<SegmentFile>] {
        &self.files
    }

    fn write(&mut self, kind: u32, base: u64, ids: &[u64], vectors: &[f32]) -> Result<()> {
        let seq = self.next_seq;
        let name = if kind == KIND_SEGMENT { format!("seg-{seq:012}.eps") } else { format!("tomb-{seq:012}.ept") };
        let header = Header { kind, seq, base, dim: self.dim as u32, count: ids.len() as u64 };
        let path = write_atomic(&self.dir, &name, header, ids, vectors)?;
        self.files.push(Arc::new(SegmentFile::open(&path)?));
        self.next_seq += 1;
        Ok(())
    }

    /// Persists a batch of vectors as a new segment (later segments replace earlier ids).
    pub fn append(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        check_add(self.dim, ids, vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        self.write(KIND_SEGMENT, 0, ids, vectors)
    }

    /// Persists removals as a tombstone file.
    pub fn remove(&mut self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(KIND_TOMBS, 0, ids, &[])
    }

    /// The ids a replay ends with (segments add, tombstone lists remove, in order),
    /// without touching the vectors.
    pub fn live_ids(&self) -> HashSet<u64> {
        let mut live = HashSet::new();
        for f in &self.files {
            if f.is_segment() {
                live.extend(f.ids().iter().copied());
            } else {
                for t in f.ids() {
                    live.remove(t);
                }
            }
        }
        live
    }

    /// Replays every file, in order, into `index` (which should be empty); segments go in
    /// by [`GalleryIndex::add_segment`], so an index may keep reading their mapped rows.
    pub fn replay(&self, index: &mut dyn GalleryIndex) -> Result<()> {
        if index.dim() != self.dim {
            return Err(EngineError::Invalid(format!(
                "replay: index dimension {} != store dimension {}",
                index.dim(),
                self.dim
            )));
        }
        for f in &self.files {
            if f.is_segment() {
                index.add_segment(f)?;
            } else {
                index.remove(f.ids())?;
            }
        }
        Ok(())
    }

    /// Rewrites the store as one segment of the live vectors and deletes the rest.
    /// Safe to interrupt: until the new segment is renamed into place the old files are
    /// authoritative; after, `open` deletes whatever the old files left behind.
    pub fn compact(&mut self) -> Result<()> {
        if self.files.len() <= 1 && self.files.iter().all(|f| f.is_segment()) {
            return Ok(());
        }
        let mut live = FlatIndex::try_new(self.dim)?;
        self.replay(&mut live)?;
        let base = self.next_seq - 1;
        let old = std::mem::take(&mut self.files);
        self.write(KIND_SEGMENT, base, live.ids(), live.vectors())?;
        // (an index may still map a deleted file: the mapping keeps its pages)
        for f in old {
            fs::remove_file(f.path())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
